"""The predict function's budgets, as an operator sets them: shares of the Lambda function's
memory and /tmp by default, each overridable by a MAAS_* variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maas.composition import source_from_settings
from maas.errors import ConfigError
from maas.runtimes.budget import MB, Limits
from maas.settings import PredictSettings


def test_on_lambda_the_budgets_are_shares_of_the_functions_memory() -> None:
    settings = PredictSettings.from_environment({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"})
    assert settings.request_limits() == Limits(
        memory_bytes=512 * MB, model_bytes=256 * MB, deadline_seconds=25.0
    )
    assert settings.cache_memory_bytes() == 256 * MB
    assert settings.max_response_bytes() == 6 * MB


def test_on_lambda_the_disk_budget_is_a_share_of_the_file_system_holding_the_cache(tmp_path: Path) -> None:
    settings = PredictSettings.from_environment(
        {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "MAAS_ARTIFACT_CACHE_DIR": str(tmp_path / "not-yet")}
    )
    stat = os.statvfs(tmp_path)
    assert settings.cache_disk_bytes() == int(stat.f_blocks * stat.f_frsize * 0.8)


def test_outside_lambda_memory_is_unbounded_and_disk_is_that_of_a_default_function() -> None:
    settings = PredictSettings.from_environment({})
    assert settings.request_limits() == Limits(deadline_seconds=25.0)
    assert settings.cache_memory_bytes() is None
    assert settings.cache_disk_bytes() == int(512 * MB * 0.8)


def test_every_budget_can_be_set() -> None:
    settings = PredictSettings.from_environment(
        {
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "MAAS_REQUEST_MEMORY_MB": "100",
            "MAAS_CACHE_MEMORY_MB": "50",
            "MAAS_CACHE_DISK_MB": "300",
            "MAAS_REQUEST_TIMEOUT_SECONDS": "0",
            "MAAS_MAX_RESPONSE_MB": "1.5",
        }
    )
    assert settings.request_limits() == Limits(
        memory_bytes=100 * MB, model_bytes=50 * MB, deadline_seconds=None
    )
    assert settings.cache_disk_bytes() == 300 * MB
    assert settings.max_response_bytes() == int(1.5 * MB)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAAS_REQUEST_MEMORY_MB", "-1"),
        ("MAAS_CACHE_DISK_MB", "lots"),
        ("MAAS_REQUEST_TIMEOUT_SECONDS", "-5"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0"),
    ],
)
def test_a_budget_that_is_no_size_is_refused_naming_it(variable: str, value: str) -> None:
    field = variable.removeprefix("MAAS_").lower() if variable.startswith("MAAS_") else "function_memory_mb"
    with pytest.raises(ConfigError, match=field):
        PredictSettings.from_environment({variable: value})


def test_budgets_past_the_functions_memory_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"come to 1100 MB, more than the function's 1024 MB"):
        PredictSettings.from_environment(
            {
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
                "MAAS_REQUEST_MEMORY_MB": "900",
                "MAAS_CACHE_MEMORY_MB": "200",
            }
        )


def test_the_registry_source_gets_the_disk_budget(tmp_path: Path) -> None:
    settings = PredictSettings(
        registry_table="registry", artifact_bucket="artifacts", artifact_cache_dir=tmp_path, cache_disk_mb=7
    )
    source = source_from_settings(settings)
    assert source.artifact_cache.budget_bytes == 7 * MB  # type: ignore[attr-defined]
