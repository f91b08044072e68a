"""Each control-plane function reads its own settings, and a missing or bad one is named."""

from __future__ import annotations

import pytest

from maas.control.settings import ReconcilerSettings, RegistrySettings
from maas.errors import ConfigError


def test_the_registry_function_needs_its_table_and_bucket_and_says_which_is_missing() -> None:
    with pytest.raises(ConfigError, match="MAAS_ARTIFACT_BUCKET"):
        RegistrySettings.from_environment({"MAAS_REGISTRY_TABLE": "t"})
    settings = RegistrySettings.from_environment(
        {"MAAS_REGISTRY_TABLE": "t", "MAAS_ARTIFACT_BUCKET": "b", "MAAS_MAX_UPLOAD_MB": "50", "OTHER": "x"}
    )
    assert (settings.registry_table, settings.artifact_bucket, settings.max_upload_mb) == ("t", "b", 50)


def test_a_bad_upload_limit_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="MAAS_MAX_UPLOAD_MB"):
        RegistrySettings.from_environment(
            {"MAAS_REGISTRY_TABLE": "t", "MAAS_ARTIFACT_BUCKET": "b", "MAAS_MAX_UPLOAD_MB": "0"}
        )


def test_the_reconciler_knows_its_endpoint_prefix() -> None:
    settings = ReconcilerSettings.from_environment(
        {"MAAS_REGISTRY_TABLE": "t", "MAAS_ARTIFACT_BUCKET": "b", "MAAS_SAGEMAKER_ENDPOINT_PREFIX": "team"}
    )
    assert settings.sagemaker_endpoint_prefix == "team"
    with pytest.raises(ConfigError, match="MAAS_REGISTRY_TABLE"):
        ReconcilerSettings.from_environment({})
