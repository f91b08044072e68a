"""Triton's protocol extensions that KServe and Triton clients call first, as pydantic models:
the model repository index, model statistics and model configuration.

Shapes follow Triton's extension documents (docs/protocol/extension_model_repository.md,
extension_statistics.md, extension_model_configuration.md), so that `tritonclient`'s
`get_model_repository_index`, `get_inference_statistics` and `get_model_config` read them.
"""

from __future__ import annotations

from pydantic import Field, RootModel

from maas.protocol.models import _Message
from maas.protocol.triton_types import TRITON_TYPES, ModelState


class RepositoryIndexRequest(_Message):
    # Strict: `"ready": "no"` would otherwise read as true.
    ready: bool = Field(default=False, strict=True, description="list only the models ready to infer")


class RepositoryIndexEntry(_Message):
    name: str
    version: str | None = None
    state: ModelState
    reason: str = ""


class RepositoryIndexResponse(RootModel[list[RepositoryIndexEntry]]):
    """A JSON array, one entry per model, as Triton answers `POST /v2/repository/index`."""


class DurationStat(_Message):
    count: int = Field(default=0, ge=0)
    ns: int = Field(default=0, ge=0)


class InferenceStats(_Message):
    success: DurationStat = Field(default_factory=DurationStat)
    fail: DurationStat = Field(default_factory=DurationStat)
    queue: DurationStat = Field(default_factory=DurationStat)
    compute_input: DurationStat = Field(default_factory=DurationStat)
    compute_infer: DurationStat = Field(default_factory=DurationStat)
    compute_output: DurationStat = Field(default_factory=DurationStat)


class ModelStatistics(_Message):
    name: str
    version: str
    last_inference: int = Field(default=0, ge=0, description="milliseconds since the epoch, 0 if none")
    inference_count: int = Field(default=0, ge=0)
    execution_count: int = Field(default=0, ge=0)
    inference_stats: InferenceStats = Field(default_factory=InferenceStats)
    # Triton lists executions per batch size; maas does not batch requests together.
    batch_stats: list[dict[str, object]] = Field(default_factory=list, max_length=0)


class ModelStatisticsResponse(_Message):
    model_stats: list[ModelStatistics]


class ModelConfigTensor(_Message):
    name: str
    data_type: str
    dims: list[int]


class ModelConfigResponse(_Message):
    name: str
    platform: str
    backend: str
    # 0: the model takes tensors exactly as `dims` shape them, batch dimension included.
    max_batch_size: int = 0
    input: list[ModelConfigTensor] = Field(default_factory=list)
    output: list[ModelConfigTensor] = Field(default_factory=list)


__all__ = [
    "TRITON_TYPES",
    "DurationStat",
    "InferenceStats",
    "ModelConfigResponse",
    "ModelConfigTensor",
    "ModelState",
    "ModelStatistics",
    "ModelStatisticsResponse",
    "RepositoryIndexEntry",
    "RepositoryIndexRequest",
    "RepositoryIndexResponse",
]
