"""The settings of the control plane's functions (the registry API and the reconciler), each
from its own `MAAS_*` environment variables: one typed class per function."""

from __future__ import annotations

import os
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maas.errors import ConfigError

PREFIX = "MAAS_"


class _FromEnvironment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Self:
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
            raise ConfigError(f"{cls.__doc__ or cls.__name__}: {problems}") from None


class RegistrySettings(_FromEnvironment):
    """the registry function's settings"""

    registry_table: str = Field(description="The registry table.")
    artifact_bucket: str = Field(description="The bucket holding artifacts, uploads and packages.")
    max_upload_mb: int = Field(default=400, ge=1, description="The largest upload the API registers.")


class ReconcilerSettings(_FromEnvironment):
    """the reconciler's settings"""

    registry_table: str = Field(description="The registry table whose stream drives the reconciler.")
    artifact_bucket: str = Field(description="The bucket holding the Triton packages.")
    sagemaker_endpoint_prefix: str = Field(
        default="maas", description="Endpoints of this deployment are named <prefix>-<model>."
    )
