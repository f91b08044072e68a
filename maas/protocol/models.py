"""Open Inference Protocol v2 REST messages as pydantic models.

Field names and shapes follow the KServe/Triton protocol exactly, so existing
clients work unchanged; maas-specific options travel in `parameters`.
`data` is typed `Any` on purpose: tensors are decoded by numpy in one C-level
call (see `maas.protocol.codec`), never validated element by element.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from maas.protocol.datatypes import Datatype

Parameters = dict[str, Any]


class _Message(BaseModel):
    # Unknown fields are ignored, as KServe and Triton do, so newer clients keep working.
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class ServerMetadataResponse(_Message):
    name: str
    version: str
    extensions: list[str] = Field(default_factory=list)


class TensorMetadata(_Message):
    name: str
    datatype: Datatype
    shape: list[int]
    parameters: Parameters | None = None


class ModelMetadataResponse(_Message):
    name: str
    versions: list[str] | None = None
    platform: str
    inputs: list[TensorMetadata] = Field(default_factory=list)
    outputs: list[TensorMetadata] = Field(default_factory=list)
    parameters: Parameters | None = None


class ServerLiveResponse(_Message):
    live: bool


class ServerReadyResponse(_Message):
    ready: bool


class ModelReadyResponse(_Message):
    name: str
    ready: bool


class RequestInput(_Message):
    name: str = Field(min_length=1)
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: Any = None


class RequestOutput(_Message):
    name: str = Field(min_length=1)
    parameters: Parameters | None = None


class InferenceRequest(_Message):
    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(_Message):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | None = None
    data: Any = None


class InferenceResponse(_Message):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class ErrorResponse(_Message):
    error: str
