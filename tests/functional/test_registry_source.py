"""The data plane serving from the registry: aliases, promotion within the TTL, canary, tampering."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from maas.dataplane import DataPlane
from maas.errors import ModelNotFound, ModelNotReady
from maas.protocol import InferenceRequest
from maas.registry import Registry, RegistrySource

SUM_REQUEST = InferenceRequest.model_validate(
    {
        "inputs": [
            {"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
            {"name": "b", "shape": [1, 3], "datatype": "FP32", "data": [1, 1, 1]},
        ]
    }
)


# What each version of sum answers to SUM_REQUEST: version 2 adds one.
SUMS = {"1": [2.0, 3.0, 4.0], "2": [3.0, 4.0, 5.0]}


def served_version(plane: DataPlane, version: str | None = None) -> str | None:
    """The version that answered, checked against what it answered (not just its label)."""
    response = plane.infer("sum", SUM_REQUEST, version).response
    if response.model_version in SUMS:
        assert list(response.outputs[0].data) == SUMS[response.model_version]
    return response.model_version


@pytest.fixture
def sum_versions(registry: Registry, artifacts: dict[str, Path]) -> Registry:
    registry.register("sum", artifacts["sum"])
    registry.register("sum", artifacts["sum-v2"])
    registry.promote("sum", "prod", 1)
    return registry


def test_a_model_without_a_version_is_served_by_its_prod_alias(
    sum_versions: Registry, tmp_path: Path
) -> None:
    plane = DataPlane(RegistrySource(sum_versions, cache_dir=tmp_path))
    assert served_version(plane) == "1"
    assert served_version(plane, "2") == "2"
    assert served_version(plane, "prod") == "1"


def test_a_promotion_is_served_once_the_alias_ttl_passes(sum_versions: Registry, tmp_path: Path) -> None:
    source = RegistrySource(sum_versions, cache_dir=tmp_path, ttl=3600)
    plane = DataPlane(source)
    assert served_version(plane) == "1"
    sum_versions.promote("sum", "prod", 2)
    assert served_version(plane) == "1"  # within the TTL the cached alias stands
    source.ttl = 0
    assert served_version(plane) == "2"
    sum_versions.rollback("sum", "prod")
    assert served_version(plane) == "1"


def test_a_canary_splits_requests_by_weight(sum_versions: Registry, tmp_path: Path) -> None:
    sum_versions.canary("sum", "prod", {1: 80, 2: 20})
    plane = DataPlane(RegistrySource(sum_versions, cache_dir=tmp_path, chooser=random.Random(7)))
    counts = Counter(served_version(plane) for _ in range(1000))
    assert 170 <= counts["2"] <= 230, counts
    assert counts["1"] + counts["2"] == 1000


def test_an_unknown_model_or_alias_and_a_retired_version_are_not_found(
    sum_versions: Registry, tmp_path: Path
) -> None:
    plane = DataPlane(RegistrySource(sum_versions, cache_dir=tmp_path))
    with pytest.raises(ModelNotFound, match="model 'nope' not found"):
        plane.infer("nope", SUM_REQUEST)
    with pytest.raises(ModelNotFound, match="alias 'staging' of model 'sum' not found"):
        plane.infer("sum", SUM_REQUEST, "staging")
    sum_versions.retire("sum", 2)
    with pytest.raises(ModelNotFound, match="model 'sum' version '2' is retired"):
        plane.infer("sum", SUM_REQUEST, "2")


def test_a_tampered_artifact_is_refused_at_load_naming_the_version(
    sum_versions: Registry, tmp_path: Path
) -> None:
    record = sum_versions.get("sum", 1)
    artifacts = sum_versions.artifacts
    artifacts.client.put_object(Bucket=artifacts.bucket, Key=record.artifact_key, Body=b"swapped bytes")
    plane = DataPlane(RegistrySource(sum_versions, cache_dir=tmp_path))
    with pytest.raises(
        ModelNotReady,
        match=r"model 'sum' version '1' is not ready: .* has sha256 .* but the registry recorded",
    ):
        plane.infer("sum", SUM_REQUEST)


def test_metadata_lists_every_version_even_the_one_prod_serves_past_the_first_100(
    registry: Registry, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    for _ in range(104):
        registry.register("sum", artifacts["sum"])
    registry.register("sum", artifacts["sum-v2"])
    registry.promote("sum", "prod", 105)
    registry.retire("sum", 7)
    plane = DataPlane(RegistrySource(registry, cache_dir=tmp_path))
    metadata = plane.model_metadata("sum")
    assert metadata.versions == [str(n) for n in range(1, 106) if n != 7]
    assert served_version(plane) == "105"
