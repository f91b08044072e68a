"""Typed settings of the Lambda functions, parsed once from the environment.

A frozen dataclass over the `MAAS_*` variables, read and checked here without pydantic:
these settings are read at every cold start, before the first answer, and the lean request
path imports no validation framework (pydantic stays for `maas.yaml` and the registry API).
Each field says its type, its bound and what it is for; a value that does not fit is a
ConfigError naming the variable, the rule and the value.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

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


def setting(default: Any = None, *, doc: str, ge: float | None = None, gt: float | None = None) -> Any:
    """A settings field: its default, what it is for, and its lower bound (`ge` or `gt`)."""
    extra = {"doc": doc, "ge": ge, "gt": gt}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=extra)
    return field(default=default, metadata=extra)


@dataclass(frozen=True, kw_only=True)
class PredictSettings:
    """What a function serves, from `MAAS_*` environment variables (e.g. MAAS_MODEL_DIR)."""

    model_dir: Path | None = setting(  # noqa: RUF009 (setting returns a dataclasses.field)
        doc="Serve models laid out as <dir>/<name>/<version>/model.<onnx|tflite>."
    )
    registry_table: str | None = setting(
        doc="Serve models from this registry table (with MAAS_ARTIFACT_BUCKET)."
    )
    artifact_bucket: str | None = setting(doc="The S3 bucket holding registered artifacts.")
    default_alias: str = setting("prod", doc="The alias that serves a request without a version.")
    alias_ttl_seconds: float = setting(
        30.0, ge=0, doc="How long an alias is trusted before it is read again."
    )
    artifact_cache_dir: Path = setting(  # noqa: RUF009
        Path("/tmp/maas-artifacts"), doc="Where downloaded artifacts are kept (Lambda: /tmp)."
    )
    idempotency_table: str | None = setting(
        doc="DynamoDB table that makes each uploaded object processed once."
    )
    batch_chunk_rows: int = setting(1024, ge=1, doc="Rows predicted per call in batch inference.")
    batch_queue_url: str | None = setting(
        doc="The batch queue, to which a batch file larger than a part sends its parts "
        "(with MAAS_IDEMPOTENCY_TABLE); without it every file runs whole."
    )
    batch_part_mb: float | None = setting(
        gt=0,
        doc="How large a part of a split batch file is; default: what half the function's "
        "timeout gets through at the measured throughput, at most 30% of /tmp (maas.batch.split).",
    )
    server_name: str = setting("maas", doc="The name server metadata reports.")
    preload: list[str] = setting([], doc="Models to load and warm at cold start (a JSON list).")  # noqa: RUF009
    sagemaker_endpoint_prefix: str = setting(
        "maas", doc="SageMaker-target models are served by endpoint <prefix>-<model>."
    )
    load_retry_seconds: float = setting(5.0, ge=0, doc="How long a failed model load is remembered.")
    function_memory_mb: int | None = setting(
        gt=0, doc=f"The function's memory ({LAMBDA_MEMORY}, set by Lambda)."
    )
    request_memory_mb: int | None = setting(
        gt=0,
        doc="What one prediction may allocate (activations and outputs); "
        f"default: {REQUEST_MEMORY_SHARE:.0%} of the function's memory, unbounded outside Lambda.",
    )
    cache_memory_mb: int | None = setting(
        gt=0,
        doc="What loaded models may take in memory, least recently used evicted first; "
        f"default: {CACHE_MEMORY_SHARE:.0%} of the function's memory, unbounded outside Lambda.",
    )
    cache_disk_mb: int | None = setting(
        gt=0,
        doc="What downloaded artifacts may take on disk, least recently used deleted first; "
        f"default: {CACHE_DISK_SHARE:.0%} of /tmp on Lambda, of {LAMBDA_DEFAULT_TMP_MB} MB elsewhere.",
    )
    request_timeout_seconds: float = setting(
        25.0,
        ge=0,
        doc="How long one prediction may run before it is stopped (0: no limit); under "
        "Lambda's timeout, so that a runaway graph is stopped before the function is killed.",
    )
    max_upload_mb: int = setting(400, gt=0, doc="The largest presigned upload the registry API registers.")
    max_response_mb: float = setting(
        6.0, gt=0, doc="The most outputs one response may carry (Lambda's payload limit)."
    )

    def __post_init__(self) -> None:
        for spec in fields(self):
            _check_bounds(spec.name, getattr(self, spec.name), spec.metadata)
        # Past the function's memory, Lambda kills the process instead of maas refusing a request.
        if self.function_memory_mb is not None:
            budgets = (self.request_limits().memory_bytes or 0) + (self.cache_memory_bytes() or 0)
            if budgets > self.function_memory_mb * MB:
                raise ConfigError(
                    f"MAAS_REQUEST_MEMORY_MB and MAAS_CACHE_MEMORY_MB come to {budgets // MB} MB, more than "
                    f"the function's {self.function_memory_mb} MB ({LAMBDA_MEMORY})"
                )

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> PredictSettings:
        """Read `MAAS_*` variables; raises ConfigError naming the variable that is wrong."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            variable = LAMBDA_MEMORY if spec.name == "function_memory_mb" else PREFIX + spec.name.upper()
            if variable in source:
                values[spec.name] = _parse(spec.name, variable, source[variable], spec.type)
        return cls(**values)

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


def _parse(name: str, variable: str, text: str, annotation: Any) -> Any:
    """The value of `variable` as the field's type (the annotation's text, as written above)."""
    kind = str(annotation).replace(" | None", "")
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "Path":
            return Path(text)
        if kind == "list[str]":
            value = json.loads(text)
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ValueError("not a JSON list of strings")
            return value
    except ValueError as error:
        raise ConfigError(
            f"bad MAAS_* environment: {variable} ({name}) must be {_KINDS[kind]}, got {text!r} ({error})"
        ) from None
    return text


_KINDS = {"int": "an integer", "float": "a number", "Path": "a path", "list[str]": "a JSON list of strings"}


def _check_bounds(name: str, value: Any, rules: Any) -> None:
    if value is None or not rules:
        return
    if rules["ge"] is not None and value < rules["ge"]:
        raise ConfigError(f"bad MAAS_* environment: {name} must be at least {rules['ge']:g}, got {value}")
    if rules["gt"] is not None and value <= rules["gt"]:
        raise ConfigError(f"bad MAAS_* environment: {name} must be greater than {rules['gt']:g}, got {value}")


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


__all__ = ["PredictSettings", "lambda_tmp_budget_mb"]
