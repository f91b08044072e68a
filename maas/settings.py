"""Typed settings of the prediction function, parsed once from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PredictSettings(BaseSettings):
    """What a prediction function serves, from `MAAS_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="MAAS_", protected_namespaces=())

    model_dir: Path | None = Field(
        default=None, description="Serve models laid out as <dir>/<name>/<version>/model.<onnx|tflite>."
    )
    server_name: str = Field(default="maas", description="The name server metadata reports.")
    preload: list[str] = Field(
        default_factory=list, description="Models to load at cold start rather than on the first request."
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
    load_retry_seconds: float = Field(
        default=5.0, ge=0, description="How long a failed model load is remembered."
    )
