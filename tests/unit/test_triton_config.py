"""The Triton model repository maas packs for SageMaker: its config.pbtxt, parsed with
Triton's own model-config schema, matches the registry signature."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from google.protobuf import text_format
from pydantic import ValidationError
from tritonclient.grpc import model_config_pb2

from maas.errors import ConfigError, InvalidInput
from maas.protocol import Datatype
from maas.registry.models import ModelVersion, SignatureRecord, TensorRecord
from maas.sagemaker.package import write_package
from maas.sagemaker.triton import InstanceKind, TritonOptions, model_config, triton_image
from tests import fakes

TYPE = model_config_pb2.DataType


def parsed(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def signature(
    inputs: list[tuple[str, str, list[int]]], outputs: list[tuple[str, str, list[int]]]
) -> SignatureRecord:
    def tensors(specs: list[tuple[str, str, list[int]]]) -> list[TensorRecord]:
        return [TensorRecord(name=n, datatype=Datatype(d), shape=s) for n, d, s in specs]

    return SignatureRecord(inputs=tensors(inputs), outputs=tensors(outputs))


def test_a_batched_fp32_model_gets_dynamic_batching_with_the_batch_dimension_left_out() -> None:
    options = TritonOptions(
        max_batch_size=64, preferred_batch_sizes=[16, 4], max_queue_delay_microseconds=500
    )
    config = parsed(
        model_config(
            "digits-large", signature([("input", "FP32", [-1, 64])], [("label", "INT64", [-1])]), options
        )
    )
    assert config.name == "digits-large"
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 64
    (tensor,) = config.input
    assert (tensor.name, tensor.data_type, list(tensor.dims)) == ("input", TYPE.TYPE_FP32, [64])
    (label,) = config.output
    # A scalar per row: Triton wants a non-empty dims and reshapes it away.
    assert (label.data_type, list(label.dims), list(label.reshape.shape)) == (TYPE.TYPE_INT64, [1], [])
    assert label.HasField("reshape")
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    (group,) = config.instance_group
    assert (group.kind, group.count) == (model_config_pb2.ModelInstanceGroup.KIND_GPU, 1)


def test_int64_and_bytes_inputs_keep_their_types_and_inner_dynamic_dimensions() -> None:
    config = parsed(
        model_config(
            "tagger",
            signature(
                [("tokens", "INT64", [-1, -1]), ("text", "BYTES", [-1, 1])],
                [("scores", "FP32", [-1, -1, 8])],
            ),
            TritonOptions(),
        )
    )
    types = {tensor.name: (tensor.data_type, list(tensor.dims)) for tensor in config.input}
    assert types == {"tokens": (TYPE.TYPE_INT64, [-1]), "text": (TYPE.TYPE_STRING, [1])}
    assert [(o.data_type, list(o.dims)) for o in config.output] == [(TYPE.TYPE_FP32, [-1, 8])]
    assert config.max_batch_size == 32


def test_a_model_with_a_fixed_first_dimension_is_served_as_is_without_batching() -> None:
    config = parsed(
        model_config("fixed", signature([("x", "FP16", [4, 3])], [("y", "BOOL", [4])]), TritonOptions())
    )
    assert config.max_batch_size == 0
    assert not config.HasField("dynamic_batching")
    assert [list(t.dims) for t in config.input] == [[4, 3]]
    assert [t.data_type for t in config.output] == [TYPE.TYPE_BOOL]


# The OIP datatypes and Triton's names for them, from the KServe v2 protocol's table of
# tensor data types and Triton's model_config.proto; written out, not derived from the code.
OIP_TO_TRITON = {
    "BOOL": TYPE.TYPE_BOOL,
    "UINT8": TYPE.TYPE_UINT8,
    "UINT16": TYPE.TYPE_UINT16,
    "UINT32": TYPE.TYPE_UINT32,
    "UINT64": TYPE.TYPE_UINT64,
    "INT8": TYPE.TYPE_INT8,
    "INT16": TYPE.TYPE_INT16,
    "INT32": TYPE.TYPE_INT32,
    "INT64": TYPE.TYPE_INT64,
    "FP16": TYPE.TYPE_FP16,
    "FP32": TYPE.TYPE_FP32,
    "FP64": TYPE.TYPE_FP64,
    "BYTES": TYPE.TYPE_STRING,
}


def test_each_oip_datatype_becomes_the_triton_type_of_the_same_name(tmp_path: Path) -> None:
    from maas.registry.service import signature_record
    from maas.runtimes import load_runtime

    record = signature_record(load_runtime(fakes.identity_model(tmp_path / "identity.onnx")).signature)
    config = parsed(
        model_config("identity", record, TritonOptions(instance_kind=InstanceKind.CPU, instance_count=2))
    )
    assert {str(datatype) for datatype in Datatype} == set(OIP_TO_TRITON)
    written = {tensor.name: tensor.data_type for tensor in config.input}
    expected = {tensor.name: OIP_TO_TRITON[str(tensor.datatype)] for tensor in record.inputs}
    assert len(expected) == len(Datatype)
    assert written == expected
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert config.instance_group[0].count == 2


def test_names_with_quotes_survive_the_text_format() -> None:
    config = parsed(
        model_config(
            'odd "name"', signature([('in "x"', "FP32", [-1])], [("out\\y", "FP32", [-1])]), TritonOptions()
        )
    )
    assert config.name == 'odd "name"'
    assert config.input[0].name == 'in "x"'
    assert config.output[0].name == "out\\y"


def test_preferred_batch_sizes_beyond_the_maximum_are_refused() -> None:
    with pytest.raises(
        ValidationError, match=r"preferred batch sizes \[64\] must be between 1 and max_batch_size 32"
    ):
        TritonOptions(max_batch_size=32, preferred_batch_sizes=[8, 64])


def test_the_package_holds_the_config_and_the_model_under_version_1(tmp_path: Path) -> None:
    from maas.registry.service import signature_record
    from maas.runtimes import load_runtime

    model = fakes.sum_model(tmp_path / "model.onnx")
    record = ModelVersion(
        name="sum",
        version=7,
        framework="onnx",
        artifact_key="artifacts/sum/abc/model.onnx",
        sha256="abc",
        size=model.stat().st_size,
        signature=signature_record(load_runtime(model).signature),
        target="sagemaker",
        created_by="tester",
    )
    tarball = write_package(tmp_path / "model.tar.gz", record, model, TritonOptions())
    with tarfile.open(tarball) as archive:
        assert sorted(archive.getnames()) == ["sum/1/model.onnx", "sum/config.pbtxt"]
        config = parsed(archive.extractfile("sum/config.pbtxt").read().decode())  # type: ignore[union-attr]
        assert archive.extractfile("sum/1/model.onnx").read() == model.read_bytes()  # type: ignore[union-attr]
    assert [t.name for t in config.input] == ["a", "b"]
    assert [t.name for t in config.output] == ["sum", "difference"]
    assert all(list(t.dims) == [3] for t in config.input)
    tflite = record.model_copy(update={"framework": "tflite"})
    with pytest.raises(InvalidInput, match="SageMaker endpoints run Triton's ONNX Runtime backend"):
        write_package(tmp_path / "other.tar.gz", tflite, model, TritonOptions())


def test_the_triton_image_is_looked_up_by_region() -> None:
    assert (
        triton_image("us-west-2")
        == "763104351884.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tritonserver:24.09-py3"
    )
    assert triton_image("af-south-1").startswith("626614931356.dkr.ecr.af-south-1.amazonaws.com/")
    assert triton_image("cn-north-1").startswith("727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/")
    with pytest.raises(ConfigError, match=r"set sagemaker\.image_uri"):
        triton_image("xx-nowhere-1")
