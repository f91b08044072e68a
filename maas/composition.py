"""The predict function assembled from its settings: which model source it serves from (a
local directory, or the registry, which also forwards SageMaker-target versions) and the
data plane over it, with its budgets and its ModelLoadTime metric.

`functions/predict/handler.py` is the composition root and calls this; it lives in the
package so that `maas dev`, the benchmarks and the tests assemble the function the same way.
The registry (boto3, its pydantic records) is imported only when the settings name it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from maas.dataplane import DataPlane
from maas.errors import ConfigError
from maas.metrics import records
from maas.sources import DirectorySource, ModelSource

if TYPE_CHECKING:
    from maas.settings import PredictSettings


def source_from_settings(settings: PredictSettings) -> ModelSource:
    """The model source the settings name; raises ConfigError if they name none."""
    if settings.registry_table is not None:
        if settings.artifact_bucket is None:
            raise ConfigError("MAAS_REGISTRY_TABLE is set but MAAS_ARTIFACT_BUCKET is not")
        from maas.registry import ArtifactStore, DynamoDBStore, Registry, RegistrySource

        registry = Registry(DynamoDBStore(settings.registry_table), ArtifactStore(settings.artifact_bucket))
        return RegistrySource(
            registry,
            default_alias=settings.default_alias,
            ttl=settings.alias_ttl_seconds,
            cache_dir=settings.artifact_cache_dir,
            cache_disk_bytes=settings.cache_disk_bytes(),
            endpoint_prefix=settings.sagemaker_endpoint_prefix,
        )
    if settings.model_dir is not None:
        return DirectorySource(settings.model_dir)
    raise ConfigError(
        "no model source is configured: set MAAS_REGISTRY_TABLE and MAAS_ARTIFACT_BUCKET, or MAAS_MODEL_DIR"
    )


def predict_dataplane(settings: PredictSettings) -> DataPlane:
    """The data plane of the predict function, over the source its settings name."""
    return DataPlane(
        source_from_settings(settings),
        server_name=settings.server_name,
        retry_after=settings.load_retry_seconds,
        limits=settings.request_limits(),
        cache_bytes=settings.cache_memory_bytes(),
        max_response_bytes=settings.max_response_bytes(),
        on_load=lambda ref, seconds: records.model_loaded(ref.name, ref.version, seconds),
    )


__all__ = ["predict_dataplane", "source_from_settings"]
