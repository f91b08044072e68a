"""Triton model repositories: `config.pbtxt` from a registry signature, and the image to run it.

The config is written as protobuf text by hand rather than through Triton's generated
`model_config_pb2`, so that packaging needs no gRPC stack; the tests parse every config
we write with that very schema.
"""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from maas.errors import ConfigError, InvalidInput
from maas.protocol.datatypes import Datatype
from maas.registry.models import SignatureRecord, TensorRecord

# OIP datatype -> Triton's DataType enum (model_config.proto).
TRITON_TYPES = {
    Datatype.BOOL: "TYPE_BOOL",
    Datatype.UINT8: "TYPE_UINT8",
    Datatype.UINT16: "TYPE_UINT16",
    Datatype.UINT32: "TYPE_UINT32",
    Datatype.UINT64: "TYPE_UINT64",
    Datatype.INT8: "TYPE_INT8",
    Datatype.INT16: "TYPE_INT16",
    Datatype.INT32: "TYPE_INT32",
    Datatype.INT64: "TYPE_INT64",
    Datatype.FP16: "TYPE_FP16",
    Datatype.FP32: "TYPE_FP32",
    Datatype.FP64: "TYPE_FP64",
    Datatype.BYTES: "TYPE_STRING",
}

# SageMaker's Triton images: the registry account per region (from the SageMaker Python SDK's
# image_uri_config/sagemaker-tritonserver.json); most regions share one account.
TRITON_VERSION = "24.09"
_DEFAULT_ACCOUNT = "763104351884"
_REGION_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-southeast-3": "907027046896",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-south-1": "692866216735",
    "il-central-1": "780543022126",
    "me-south-1": "217643126080",
}
_DEFAULT_ACCOUNT_REGIONS = {
    "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
    "ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2", "eu-west-3",
    "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
}  # fmt: skip


def triton_image(region: str, version: str = TRITON_VERSION) -> str:
    """The ECR URI of SageMaker's Triton image in `region`; raises ConfigError for a region without one."""
    account = _REGION_ACCOUNTS.get(region) or (
        _DEFAULT_ACCOUNT if region in _DEFAULT_ACCOUNT_REGIONS else None
    )
    if account is None:
        raise ConfigError(
            f"no SageMaker Triton image is known for region '{region}'; set sagemaker.image_uri in maas.yaml"
        )
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/sagemaker-tritonserver:{version}-py3"


class InstanceKind(StrEnum):
    GPU = "KIND_GPU"
    CPU = "KIND_CPU"


class TritonOptions(BaseModel):
    """How Triton runs one model: batching and where its instances live."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(default=32, ge=1, le=4096, description="largest batch Triton forms")
    preferred_batch_sizes: list[int] = Field(default_factory=lambda: [8, 16])
    max_queue_delay_microseconds: int = Field(
        default=100, ge=0, le=10_000_000, description="how long a request may wait for a batch"
    )
    instance_kind: InstanceKind = InstanceKind.GPU
    instance_count: int = Field(default=1, ge=1, le=16, description="model instances per GPU (or CPU)")

    @model_validator(mode="after")
    def _preferred_within_max(self) -> TritonOptions:
        if "preferred_batch_sizes" not in self.model_fields_set:
            # The defaults bend to a smaller max_batch_size; sizes a caller names do not.
            fitting = [size for size in self.preferred_batch_sizes if size <= self.max_batch_size]
            self.preferred_batch_sizes = fitting or [self.max_batch_size]
        too_big = [size for size in self.preferred_batch_sizes if not 1 <= size <= self.max_batch_size]
        if too_big:
            raise ValueError(
                f"preferred batch sizes {too_big} must be between 1 and max_batch_size {self.max_batch_size}"
            )
        return self


def model_config(name: str, signature: SignatureRecord, options: TritonOptions) -> str:
    """`config.pbtxt` for the ONNX model `name`.

    When every input and output has a dynamic first dimension, that dimension is
    Triton's batch dimension: it leaves `dims`, and dynamic batching is turned on.
    Otherwise the model takes tensors exactly as shaped and Triton does not batch.
    """
    tensors = signature.inputs + signature.outputs
    if not tensors:
        raise InvalidInput(f"model '{name}' has no inputs or outputs to serve")
    batched = all(tensor.shape and tensor.shape[0] == -1 for tensor in tensors)
    lines = [
        f"name: {_quoted(name)}",
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {options.max_batch_size if batched else 0}",
        _tensor_block("input", signature.inputs, batched),
        _tensor_block("output", signature.outputs, batched),
        f"instance_group [ {{ kind: {options.instance_kind.value} count: {options.instance_count} }} ]",
    ]
    if batched:
        sizes = ", ".join(str(size) for size in sorted(set(options.preferred_batch_sizes)))
        lines.append(
            "dynamic_batching {\n"
            f"  preferred_batch_size: [ {sizes} ]\n"
            f"  max_queue_delay_microseconds: {options.max_queue_delay_microseconds}\n"
            "}"
        )
    return "\n".join(lines) + "\n"


def _tensor_block(kind: str, tensors: list[TensorRecord], batched: bool) -> str:
    entries = []
    for tensor in tensors:
        dims = tensor.shape[1:] if batched else tensor.shape
        entry = [f"    name: {_quoted(tensor.name)}", f"    data_type: {TRITON_TYPES[tensor.datatype]}"]
        if dims:
            entry.append(f"    dims: [ {', '.join(str(dim) for dim in dims)} ]")
        else:
            # A scalar per batch item: Triton needs a non-empty dims and reshapes it away.
            entry.append("    dims: [ 1 ]\n    reshape: { shape: [ ] }")
        entries.append("  {\n" + "\n".join(entry) + "\n  }")
    return f"{kind} [\n" + ",\n".join(entries) + "\n]"


def _quoted(text: str) -> str:
    # JSON string escapes for quotes, backslashes and newlines are valid protobuf text escapes.
    return json.dumps(text, ensure_ascii=False)
