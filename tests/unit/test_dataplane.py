"""The data plane, as a client of any transport sees it: health, metadata, inference and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maas.dataplane import DataPlane
from maas.errors import InvalidInput, ModelNotFound, ModelNotReady
from maas.protocol import Datatype, InferenceRequest
from maas.sources import DirectorySource
from tests import fakes
from tests.unit.test_codec import JSON_SAMPLES


def infer_request(*inputs: dict[str, object], **fields: object) -> InferenceRequest:
    return InferenceRequest.model_validate({"inputs": list(inputs), **fields})


def sum_inputs(a: list[list[float]], b: list[list[float]]) -> list[dict[str, object]]:
    return [
        {"name": "a", "shape": [len(a), 3], "datatype": "FP32", "data": a},
        {"name": "b", "shape": [len(b), 3], "datatype": "FP32", "data": b},
    ]


def test_server_is_live_ready_and_names_itself(dataplane: DataPlane) -> None:
    assert dataplane.live().live
    assert dataplane.ready().ready
    metadata = dataplane.server_metadata()
    assert metadata.name == "maas"
    assert "binary_tensor_data" in metadata.extensions


def test_server_is_not_ready_when_its_model_directory_is_missing(tmp_path: Path) -> None:
    assert not DataPlane(DirectorySource(tmp_path / "missing")).ready().ready


def test_model_metadata_reports_the_signature_with_dynamic_batch(dataplane: DataPlane) -> None:
    metadata = dataplane.model_metadata("digits")
    assert metadata.platform == "onnxruntime_onnx"
    assert metadata.versions == ["1"]
    assert [(t.name, t.datatype, t.shape) for t in metadata.inputs] == [("input", Datatype.FP32, [-1, 64])]
    outputs = {t.name: (t.datatype, t.shape) for t in metadata.outputs}
    assert outputs == {"label": (Datatype.INT64, [-1]), "probabilities": (Datatype.FP32, [-1, 10])}


def test_without_a_version_the_highest_is_served(dataplane: DataPlane) -> None:
    assert dataplane.model_metadata("sum").versions == ["1", "2"]
    result = dataplane.infer("sum", infer_request(*sum_inputs([[1, 2, 3]], [[1, 1, 1]])))
    assert result.response.model_version == "2"
    pinned = dataplane.infer("sum", infer_request(*sum_inputs([[1, 2, 3]], [[1, 1, 1]])), version="1")
    assert pinned.response.model_version == "1"


def test_infer_returns_every_output_by_default(dataplane: DataPlane) -> None:
    result = dataplane.infer(
        "sum", infer_request(*sum_inputs([[1, 2, 3], [4, 5, 6]], [[1, 1, 1], [2, 2, 2]]), id="r1")
    )
    response = result.response
    assert response.model_name == "sum"
    assert response.id == "r1"
    outputs = {output.name: output for output in response.outputs}
    assert outputs["sum"].data == [2, 3, 4, 6, 7, 8]
    assert outputs["sum"].shape == [2, 3]
    assert outputs["difference"].data == [0, 1, 2, 2, 3, 4]


def test_requested_outputs_filter_and_order_the_response(dataplane: DataPlane) -> None:
    request = infer_request(*sum_inputs([[1, 2, 3]], [[1, 1, 1]]), outputs=[{"name": "difference"}])
    response = dataplane.infer("sum", request).response
    assert [output.name for output in response.outputs] == ["difference"]


def test_an_unknown_requested_output_is_refused(dataplane: DataPlane) -> None:
    request = infer_request(*sum_inputs([[1, 2, 3]], [[1, 1, 1]]), outputs=[{"name": "product"}])
    with pytest.raises(
        InvalidInput, match="unknown output 'product', the model's outputs are: sum, difference"
    ):
        dataplane.infer("sum", request)


def test_digits_are_classified_correctly(dataplane: DataPlane, digits_test_rows: tuple) -> None:
    features, labels = digits_test_rows
    request = infer_request(
        {"name": "input", "shape": list(features.shape), "datatype": "FP32", "data": features.tolist()}
    )
    outputs = {o.name: o for o in dataplane.infer("digits", request).response.outputs}
    predicted = np.array(outputs["label"].data)
    assert (predicted == labels).mean() > 0.93
    probabilities = np.array(outputs["probabilities"].data).reshape(outputs["probabilities"].shape)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), predicted)


def test_every_datatype_passes_through_a_model(dataplane: DataPlane) -> None:
    inputs = [
        {"name": f"in_{datatype.value.lower()}", "shape": [4], "datatype": datatype.value, "data": values}
        for datatype, values in JSON_SAMPLES.items()
    ]
    response = dataplane.infer("identity", infer_request(*inputs)).response
    by_name = {output.name: output for output in response.outputs}
    for datatype, values in JSON_SAMPLES.items():
        output = by_name[f"out_{datatype.value.lower()}"]
        assert output.datatype == datatype
        assert output.data == values, datatype


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            [{"name": "input", "shape": [1, 63], "datatype": "FP32", "data": [0] * 63}],
            r"input 'input' has shape \[1, 63\] but the model expects \[-1, 64\]",
        ),
        (
            [{"name": "input", "shape": [64], "datatype": "FP32", "data": [0] * 64}],
            r"has shape \[64\] but the model expects \[-1, 64\]",
        ),
        (
            [{"name": "input", "shape": [1, 64], "datatype": "FP64", "data": [0] * 64}],
            "input 'input' has datatype FP64 but the model expects FP32",
        ),
        (
            [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}],
            "unknown input 'pixels', the model's inputs are: input",
        ),
        ([], "missing input"),
        (
            [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}] * 2,
            "input 'input' is given more than once",
        ),
        (
            [{"name": "input", "shape": [2, 64], "datatype": "FP32", "data": [0] * 64}],
            r"input 'input' has 64 elements but shape \[2, 64\] needs 128",
        ),
    ],
)
def test_input_that_does_not_fit_the_model_is_refused_by_name(
    dataplane: DataPlane, inputs: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        dataplane.infer("digits", infer_request(*inputs))


def test_an_unknown_model_or_version_is_not_found(dataplane: DataPlane) -> None:
    with pytest.raises(ModelNotFound, match="model 'nope' not found"):
        dataplane.model_metadata("nope")
    with pytest.raises(ModelNotFound, match="model 'sum' version '9' not found"):
        dataplane.model_ready("sum", "9")


@pytest.mark.parametrize("name", ["..", "../digits", "a/b", "x" * 200, ""])
def test_model_names_that_could_escape_the_store_are_refused(dataplane: DataPlane, name: str) -> None:
    with pytest.raises(InvalidInput, match="is not valid"):
        dataplane.model_metadata(name)


def test_a_model_that_fails_to_load_is_not_ready_with_the_reason(dataplane: DataPlane) -> None:
    with pytest.raises(
        ModelNotReady, match="model 'broken' version '1' is not ready: ONNX Runtime cannot load"
    ):
        dataplane.model_ready("broken")
    with pytest.raises(ModelNotReady):
        dataplane.infer("broken", infer_request())


def test_a_fixed_model_file_is_loaded_again_after_the_retry_delay(tmp_path: Path) -> None:
    path = fakes.broken_model(tmp_path / "sum" / "1" / "model.onnx")
    plane = DataPlane(DirectorySource(tmp_path, ttl=0.0), retry_after=0.0)
    with pytest.raises(ModelNotReady):
        plane.model_ready("sum")
    fakes.sum_model(path)
    assert plane.model_ready("sum").ready


def test_a_model_is_loaded_once_and_cached(model_dir: Path) -> None:
    class CountingSource(DirectorySource):
        loads = 0

        def load(self, ref):  # type: ignore[no-untyped-def]
            CountingSource.loads += 1
            return super().load(ref)

    plane = DataPlane(CountingSource(model_dir))
    for _ in range(3):
        plane.infer("sum", infer_request(*sum_inputs([[1, 2, 3]], [[1, 1, 1]])))
    plane.model_metadata("sum")
    assert CountingSource.loads == 1


def test_outputs_go_as_binary_when_asked(dataplane: DataPlane) -> None:
    request = infer_request(
        *sum_inputs([[1, 2, 3]], [[1, 1, 1]]),
        outputs=[{"name": "sum", "parameters": {"binary_data": True}}, {"name": "difference"}],
    )
    result = dataplane.infer("sum", request)
    total, difference = result.response.outputs
    assert total.data is None and total.parameters == {"binary_data_size": 12}
    assert np.frombuffer(result.binary[0], dtype="<f4").tolist() == [2, 3, 4]
    assert difference.data == [0, 1, 2]
