"""The OIP v2 messages of the request path, as msgspec structs: decoded and encoded in C.

These carry exactly the fields of the pydantic models in `maas.protocol.models` and
`maas.protocol.triton` (which stay the documented schema, the OpenAPI document's source,
and the API of callers that build requests in Python). A body msgspec accepts strictly is
served at once; one it refuses is handed to the pydantic model, which either accepts it (a
lax spelling such as `"shape": ["1"]`) or refuses it with the error text clients have always
seen. pydantic is imported only then, so a well-formed request never loads it.

Encoding leaves out only what pydantic's `exclude_none` left out: fields whose default is
None and whose value is None. Every other field has no default, so it is always written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Protocol

import msgspec

from maas.errors import InvalidInput
from maas.protocol.datatypes import Datatype
from maas.protocol.triton_types import ModelState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import BaseModel, ValidationError

Parameters = dict[str, Any]
Name = Annotated[str, msgspec.Meta(min_length=1)]


class _Message(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A message; unknown fields are ignored, as KServe and Triton do."""


# What the data plane reads of a request, whichever class decoded it (the struct here, or
# the pydantic model a lax body or a Python caller built).
class TensorInput(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> list[int]: ...
    @property
    def datatype(self) -> str: ...
    @property
    def parameters(self) -> Parameters | None: ...
    @property
    def data(self) -> Any: ...


class TensorOutputRequest(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def parameters(self) -> Parameters | None: ...


class Request(Protocol):
    @property
    def id(self) -> str | None: ...
    @property
    def parameters(self) -> Parameters | None: ...
    @property
    def inputs(self) -> Sequence[TensorInput]: ...
    @property
    def outputs(self) -> Sequence[TensorOutputRequest] | None: ...


class RequestInput(_Message, kw_only=True):
    name: Name
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: Any = None


class RequestOutput(_Message, kw_only=True):
    name: Name
    parameters: Parameters | None = None


class InferenceRequest(_Message, kw_only=True):
    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class RepositoryIndexRequest(_Message, kw_only=True):
    ready: bool = False


class ServerMetadataResponse(_Message, kw_only=True):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(_Message, kw_only=True):
    name: str
    datatype: Datatype
    shape: list[int]
    parameters: Parameters | None = None


class ModelMetadataResponse(_Message, kw_only=True):
    name: str
    versions: list[str] | None = None
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: Parameters | None = None


class ServerLiveResponse(_Message, kw_only=True):
    live: bool


class ServerReadyResponse(_Message, kw_only=True):
    ready: bool


class ModelReadyResponse(_Message, kw_only=True):
    name: str
    ready: bool


class ResponseOutput(_Message, kw_only=True):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | None = None
    data: Any = None


class InferenceResponse(_Message, kw_only=True):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class RepositoryIndexEntry(_Message, kw_only=True):
    name: str
    version: str | None = None
    state: ModelState
    reason: str


class RepositoryIndexResponse(_Message, kw_only=True):
    """A JSON array, one entry per model; `root` as in the pydantic RootModel."""

    root: list[RepositoryIndexEntry]


class DurationStat(_Message, kw_only=True):
    count: int
    ns: int


class InferenceStats(_Message, kw_only=True):
    success: DurationStat
    fail: DurationStat
    queue: DurationStat
    compute_input: DurationStat
    compute_infer: DurationStat
    compute_output: DurationStat


class ModelStatistics(_Message, kw_only=True):
    name: str
    version: str
    last_inference: int
    inference_count: int
    execution_count: int
    inference_stats: InferenceStats
    batch_stats: list[dict[str, object]]


class ModelStatisticsResponse(_Message, kw_only=True):
    model_stats: list[ModelStatistics]


class ModelConfigTensor(_Message, kw_only=True):
    name: str
    data_type: str
    dims: list[int]


class ModelConfigResponse(_Message, kw_only=True):
    name: str
    platform: str
    backend: str
    max_batch_size: int
    input: list[ModelConfigTensor]
    output: list[ModelConfigTensor]


_REQUEST = msgspec.json.Decoder(InferenceRequest)
_INDEX_REQUEST = msgspec.json.Decoder(RepositoryIndexRequest)
_ENCODER = msgspec.json.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    """`message` as JSON; a repository index is its bare array, as Triton answers."""
    if isinstance(message, RepositoryIndexResponse):
        return _ENCODER.encode(message.root)
    return _ENCODER.encode(message)


def to_builtins(message: msgspec.Struct) -> dict[str, Any]:
    """`message` as plain JSON-ready Python values, None fields left out."""
    built: dict[str, Any] = msgspec.to_builtins(message)
    return built


def decode_request(body: bytes) -> Request:
    """The inference request in a JSON body (already checked to be UTF-8); raises InvalidInput
    saying what is malformed, in the words of the pydantic model."""
    try:
        return _REQUEST.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        from maas.protocol.models import InferenceRequest as Lax

        return _lax(Lax, body, "inference request")  # type: ignore[return-value]


def decode_index_request(body: bytes) -> RepositoryIndexRequest:
    """The repository index request in a JSON body; raises InvalidInput as `decode_request`.
    Its one field is strict in both classes, so the lax model can only refuse."""
    try:
        return _INDEX_REQUEST.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        from maas.protocol.triton import RepositoryIndexRequest as Lax

        checked = _lax(Lax, body, "repository index request")
        return RepositoryIndexRequest(ready=bool(checked.ready))  # type: ignore[attr-defined]


def _lax(model: type[BaseModel], body: bytes, what: str) -> BaseModel:
    from pydantic import ValidationError

    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise InvalidInput(f"invalid {what}: {describe(error)}") from None


def describe(error: ValidationError, limit: int = 3) -> str:
    """The first `limit` problems pydantic found, each with where it is."""
    problems = []
    for detail in error.errors(include_url=False)[:limit]:
        where = ".".join(str(part) for part in detail["loc"])
        problems.append(f"{where}: {detail['msg']}" if where else detail["msg"])
    more = error.error_count() - limit
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")
