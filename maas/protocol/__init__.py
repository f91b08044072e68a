"""The Open Inference Protocol v2: messages, datatypes, tensor codec and binary extension.

The pydantic messages (the schema of the OpenAPI document, and what Python callers build)
are imported on first use of their name: the request path decodes and encodes with the
msgspec structs of `maas.protocol.wire`, and importing this package must not load pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from maas.protocol.binary import HEADER_LENGTH, input_buffers, output_as_binary, split_body
from maas.protocol.codec import decode_tensor, encode_tensor, json_tensors, tensor_from_json, tensor_to_bytes
from maas.protocol.datatypes import NUMPY_DTYPES, Datatype, datatype_of, parse_datatype

if TYPE_CHECKING:
    from maas.protocol.models import (
        ErrorResponse,
        InferenceRequest,
        InferenceResponse,
        ModelMetadataResponse,
        ModelReadyResponse,
        RequestInput,
        RequestOutput,
        ResponseOutput,
        ServerLiveResponse,
        ServerMetadataResponse,
        ServerReadyResponse,
        TensorMetadata,
    )
    from maas.protocol.triton import (
        ModelConfigResponse,
        ModelStatisticsResponse,
        RepositoryIndexRequest,
        RepositoryIndexResponse,
    )

_LAZY = {
    **dict.fromkeys(
        (
            "ErrorResponse",
            "InferenceRequest",
            "InferenceResponse",
            "ModelMetadataResponse",
            "ModelReadyResponse",
            "RequestInput",
            "RequestOutput",
            "ResponseOutput",
            "ServerLiveResponse",
            "ServerMetadataResponse",
            "ServerReadyResponse",
            "TensorMetadata",
        ),
        "maas.protocol.models",
    ),
    **dict.fromkeys(
        (
            "ModelConfigResponse",
            "ModelStatisticsResponse",
            "RepositoryIndexRequest",
            "RepositoryIndexResponse",
        ),
        "maas.protocol.triton",
    ),
}


def __getattr__(name: str) -> Any:
    # PEP 562: the pydantic messages load when a caller first names one.
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HEADER_LENGTH",
    "NUMPY_DTYPES",
    "Datatype",
    "ErrorResponse",
    "InferenceRequest",
    "InferenceResponse",
    "ModelConfigResponse",
    "ModelMetadataResponse",
    "ModelReadyResponse",
    "ModelStatisticsResponse",
    "RepositoryIndexRequest",
    "RepositoryIndexResponse",
    "RequestInput",
    "RequestOutput",
    "ResponseOutput",
    "ServerLiveResponse",
    "ServerMetadataResponse",
    "ServerReadyResponse",
    "TensorMetadata",
    "datatype_of",
    "decode_tensor",
    "encode_tensor",
    "input_buffers",
    "json_tensors",
    "output_as_binary",
    "parse_datatype",
    "split_body",
    "tensor_from_json",
    "tensor_to_bytes",
]
