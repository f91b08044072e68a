"""Typed settings of the Lambda functions, parsed once from the environment.

A plain pydantic model over the `MAAS_*` variables rather than pydantic-settings:
the same validation, without 30 ms of imports on every cold start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from maas.errors import ConfigError

PREFIX = "MAAS_"


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

    @field_validator("preload", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> PredictSettings:
        """Read `MAAS_*` variables; raises ConfigError naming the variable that is wrong."""
        source = os.environ if environ is None else environ
        values = {
            key[len(PREFIX) :].lower(): value for key, value in source.items() if key.startswith(PREFIX)
        }
        try:
            return cls.model_validate(values)
        except (ValidationError, json.JSONDecodeError) as error:
            raise ConfigError(f"bad MAAS_* environment: {error}") from None
