"""The Open Inference Protocol v2: messages, datatypes, tensor codec and binary extension."""

from maas.protocol.binary import HEADER_LENGTH, input_buffers, output_as_binary, split_body
from maas.protocol.codec import decode_tensor, encode_tensor, json_tensors, tensor_from_json, tensor_to_bytes
from maas.protocol.datatypes import NUMPY_DTYPES, Datatype, datatype_of, parse_datatype
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
