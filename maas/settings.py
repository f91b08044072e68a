"""Typed settings of the Lambda functions, parsed once from the environment.

A plain pydantic model over the `MAAS_*` variables rather than pydantic-settings:
the same validation, without 30 ms of imports on every cold start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from maas.errors import ConfigError
from maas.runtimes.budget import MB, Limits

PREFIX = "MAAS_"
# Lambda's own variable for the function's memory, in MB: the budgets below are shares of it.
LAMBDA_MEMORY = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
# Shares of the function's memory: what one request may allocate, and what loaded models may
# take; the rest is Python, the runtime itself, and the response being encoded.
REQUEST_MEMORY_SHARE = 0.5
CACHE_MEMORY_SHARE = 0.25
# Share of /tmp for downloaded artifacts; Lambda's default /tmp is 512 MB.
CACHE_DISK_SHARE = 0.8
LAMBDA_DEFAULT_TMP_MB = 512


class PredictSettings(BaseModel):
    """What a function serves, from `MAAS_*` environment variables (e.g. MAAS_MODEL_DIR)."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    model_dir: Path | None = Field(
        default=None, description="Serve models laid out as <dir>/<name>/<version>/model.<onnx|tflite>."
    )
    registry_table: str | None = Field(
        default=None, description="Serve models from this registry table (with MAAS_ARTIFACT_BUCKET)."
    )
    artifact_bucket: str | None = Field(
        default=None, description="The S3 bucket holding registered artifacts."
    )
    default_alias: str = Field(
        default="prod", description="The alias that serves a request without a version."
    )
    alias_ttl_seconds: float = Field(
        default=30.0, ge=0, description="How long an alias is trusted before it is read again."
    )
    artifact_cache_dir: Path = Field(
        default=Path("/tmp/maas-artifacts"), description="Where downloaded artifacts are kept (Lambda: /tmp)."
    )
    idempotency_table: str | None = Field(
        default=None, description="DynamoDB table that makes each uploaded object processed once."
    )
    batch_chunk_rows: int = Field(
        default=1024, ge=1, description="Rows predicted per call in batch inference."
    )
    server_name: str = Field(default="maas", description="The name server metadata reports.")
    preload: list[str] = Field(
        default_factory=list, description="Models to load and warm at cold start (a JSON list)."
    )
    sagemaker_endpoint_prefix: str = Field(
        default="maas", description="SageMaker-target models are served by endpoint <prefix>-<model>."
    )
    load_retry_seconds: float = Field(
        default=5.0, ge=0, description="How long a failed model load is remembered."
    )
    function_memory_mb: int | None = Field(
        default=None, gt=0, description=f"The function's memory ({LAMBDA_MEMORY}, set by Lambda)."
    )
    request_memory_mb: int | None = Field(
        default=None,
        gt=0,
        description="What one prediction may allocate (activations and outputs); "
        f"default: {REQUEST_MEMORY_SHARE:.0%} of the function's memory, unbounded outside Lambda.",
    )
    cache_memory_mb: int | None = Field(
        default=None,
        gt=0,
        description="What loaded models may take in memory, least recently used evicted first; "
        f"default: {CACHE_MEMORY_SHARE:.0%} of the function's memory, unbounded outside Lambda.",
    )
    cache_disk_mb: int | None = Field(
        default=None,
        gt=0,
        description="What downloaded artifacts may take on disk, least recently used deleted first; "
        f"default: {CACHE_DISK_SHARE:.0%} of /tmp on Lambda, of {LAMBDA_DEFAULT_TMP_MB} MB elsewhere.",
    )
    request_timeout_seconds: float = Field(
        default=25.0,
        ge=0,
        description="How long one prediction may run before it is stopped (0: no limit); under "
        "Lambda's timeout, so that a runaway graph is stopped before the function is killed.",
    )
    max_upload_mb: int = Field(
        default=400, gt=0, description="The largest presigned upload the registry API registers."
    )
    max_response_mb: float = Field(
        default=6.0, gt=0, description="The most outputs one response may carry (Lambda's payload limit)."
    )

    @field_validator("preload", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _budgets_fit_the_function(self) -> PredictSettings:
        # Past the function's memory, Lambda kills the process instead of maas refusing a request.
        if self.function_memory_mb is not None:
            budgets = (self.request_limits().memory_bytes or 0) + (self.cache_memory_bytes() or 0)
            if budgets > self.function_memory_mb * MB:
                raise ValueError(
                    f"MAAS_REQUEST_MEMORY_MB and MAAS_CACHE_MEMORY_MB come to {budgets // MB} MB, more than "
                    f"the function's {self.function_memory_mb} MB ({LAMBDA_MEMORY})"
                )
        return self

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> PredictSettings:
        """Read `MAAS_*` variables; raises ConfigError naming the variable that is wrong."""
        source = os.environ if environ is None else environ
        values = {
            key[len(PREFIX) :].lower(): value for key, value in source.items() if key.startswith(PREFIX)
        }
        if LAMBDA_MEMORY in source:
            values["function_memory_mb"] = source[LAMBDA_MEMORY]
        try:
            return cls.model_validate(values)
        except (ValidationError, json.JSONDecodeError) as error:
            raise ConfigError(f"bad MAAS_* environment: {error}") from None

    def request_limits(self) -> Limits:
        """What one prediction may use, for the data plane."""
        return Limits(
            memory_bytes=_bytes(self.request_memory_mb, self.function_memory_mb, REQUEST_MEMORY_SHARE),
            model_bytes=self.cache_memory_bytes(),
            deadline_seconds=self.request_timeout_seconds or None,
        )

    def cache_memory_bytes(self) -> int | None:
        """The memory budget of loaded models (None: unbounded)."""
        return _bytes(self.cache_memory_mb, self.function_memory_mb, CACHE_MEMORY_SHARE)

    def cache_disk_bytes(self) -> int:
        """The disk budget of downloaded artifacts: on Lambda, a share of the file system holding
        the cache (/tmp is sized to the function's ephemeral storage, which no variable tells)."""
        if self.cache_disk_mb is not None:
            return self.cache_disk_mb * MB
        tmp_bytes = LAMBDA_DEFAULT_TMP_MB * MB
        if self.function_memory_mb is not None:
            tmp_bytes = _file_system_bytes(self.artifact_cache_dir) or tmp_bytes
        return int(tmp_bytes * CACHE_DISK_SHARE)

    def max_response_bytes(self) -> int:
        return int(self.max_response_mb * MB)


def lambda_tmp_budget_mb(tmp_mb: int = LAMBDA_DEFAULT_TMP_MB) -> int:
    """The artifact cache's disk budget for a function with `tmp_mb` of /tmp: what local
    workers get, whose temporary directory is the host's rather than a /tmp of their own."""
    return int(tmp_mb * CACHE_DISK_SHARE)


def _bytes(chosen_mb: int | None, function_mb: int | None, share: float) -> int | None:
    if chosen_mb is not None:
        return chosen_mb * MB
    return None if function_mb is None else int(function_mb * share * MB)


def _file_system_bytes(path: Path) -> int | None:
    """The size of the file system that holds `path` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            stat = os.statvfs(candidate)
            return stat.f_blocks * stat.f_frsize
    return None
