"""The reconciler function's settings, from its `MAAS_*` environment variables."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maas.errors import ConfigError

PREFIX = "MAAS_"


class ReconcilerSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    registry_table: str = Field(description="The registry table whose stream drives the reconciler.")
    artifact_bucket: str = Field(description="The bucket holding the Triton packages.")
    sagemaker_endpoint_prefix: str = Field(
        default="maas", description="Endpoints of this deployment are named <prefix>-<model>."
    )

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> ReconcilerSettings:
        source = os.environ if environ is None else environ
        values = {
            key[len(PREFIX) :].lower(): value for key, value in source.items() if key.startswith(PREFIX)
        }
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(
                f"{PREFIX}{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()
            )
            raise ConfigError(f"reconciler settings: {problems}") from None
