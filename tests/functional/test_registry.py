"""The registry's rules, run against the in-memory store and against DynamoDB on moto."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.errors import ConflictError, InvalidInput, ModelNotFound
from maas.registry import Registry, Target, VersionStatus, sha256_of


def test_registering_records_everything_about_the_version(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    version = registry.register(
        "digits",
        artifacts["digits"],
        quantization="int8-dynamic",
        metrics={"accuracy": 0.97},
        labels={"team": "vision"},
        source_commit="abc123",
    )
    assert version.version == 1
    assert version.framework == "onnx"
    assert version.sha256 == sha256_of(artifacts["digits"])
    assert version.size == artifacts["digits"].stat().st_size
    assert version.target is Target.LAMBDA
    assert [t.name for t in version.signature.inputs] == ["input"]
    assert version.signature.inputs[0].shape == [-1, 64]
    assert (version.metrics, version.labels, version.source_commit) == (
        {"accuracy": 0.97},
        {"team": "vision"},
        "abc123",
    )
    assert version.created_by == "tester"
    assert version.created_at
    assert registry.get("digits", 1) == version


def test_versions_count_up_and_an_artifact_is_stored_once(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    first = registry.register("sum", artifacts["sum"])
    second = registry.register("sum", artifacts["sum"])
    assert (first.version, second.version) == (1, 2)
    assert first.artifact_key == second.artifact_key
    listed = registry.artifacts.client.list_objects_v2(Bucket=registry.artifacts.bucket, Prefix="artifacts/")
    assert listed["KeyCount"] == 1


def test_a_file_that_does_not_load_is_refused_at_registration(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    with pytest.raises(InvalidInput, match=r"cannot register 'model\.onnx': ONNX Runtime cannot load"):
        registry.register("broken", artifacts["broken"])
    with pytest.raises(ModelNotFound):
        registry.versions("broken")


def test_bad_names_and_targets_are_refused(registry: Registry, artifacts: dict[str, Path]) -> None:
    with pytest.raises(InvalidInput, match=r"model name '\.\./x' is not valid"):
        registry.register("../x", artifacts["sum"])
    with pytest.raises(InvalidInput, match="target 'gpu' is not one of: lambda, sagemaker"):
        registry.register("sum", artifacts["sum"], target="gpu")


def test_promote_canary_and_rollback_keep_a_full_history(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    for _ in range(3):
        registry.register("sum", artifacts["sum"])
    assert registry.promote("sum", "prod", 1).weights == {1: 100}
    assert registry.promote("sum", "prod", 2).weights == {2: 100}
    canary = registry.canary("sum", "prod", {2: 90, 3: 10})
    assert canary.weights == {2: 90, 3: 10}
    assert canary.revision == 3
    rolled_back = registry.rollback("sum", "prod")
    assert rolled_back.weights == {2: 100}
    history = registry.history("sum", "prod").items
    assert [(h.action, h.weights, h.previous) for h in history] == [
        ("rollback", {2: 100}, {2: 90, 3: 10}),
        ("canary", {2: 90, 3: 10}, {2: 100}),
        ("promote", {2: 100}, {1: 100}),
        ("promote", {1: 100}, None),
    ]
    assert [h.revision for h in history] == [4, 3, 2, 1]


def test_an_alias_with_no_earlier_target_cannot_roll_back(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    registry.promote("sum", "staging", 1)
    with pytest.raises(ConflictError, match="no earlier target to roll back to"):
        registry.rollback("sum", "staging")


@pytest.mark.parametrize("weights", [{1: 50, 2: 40}, {1: 0, 2: 100}, {1: -10, 2: 110}, {}])
def test_canary_weights_must_be_positive_and_add_up_to_100(
    registry: Registry, artifacts: dict[str, Path], weights: dict[int, int]
) -> None:
    registry.register("sum", artifacts["sum"])
    registry.register("sum", artifacts["sum"])
    with pytest.raises(InvalidInput, match="add up to 100"):
        registry.canary("sum", "prod", weights)


def test_an_alias_write_based_on_a_stale_read_is_a_conflict(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    registry.register("sum", artifacts["sum"])
    read = registry.promote("sum", "prod", 1)
    registry.promote("sum", "prod", 2, expected_revision=read.revision)
    with pytest.raises(ConflictError, match="is at revision 2, not 1"):
        registry.promote("sum", "prod", 1, expected_revision=read.revision)
    assert registry.alias("sum", "prod").weights == {2: 100}


def test_promoting_an_unknown_version_or_model_is_not_found(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    with pytest.raises(ModelNotFound, match="model 'sum' version '9' not found"):
        registry.promote("sum", "prod", 9)
    with pytest.raises(ModelNotFound, match="model 'nope' not found"):
        registry.promote("nope", "prod", 1)


def test_a_served_version_cannot_be_retired_and_a_retired_one_is_kept(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    registry.register("sum", artifacts["sum"])
    registry.canary("sum", "prod", {1: 50, 2: 50})
    with pytest.raises(ConflictError, match="served by alias\\(es\\) prod"):
        registry.retire("sum", 1)
    registry.promote("sum", "prod", 2)
    retired = registry.retire("sum", 1)
    assert retired.status is VersionStatus.RETIRED
    assert [v.version for v in registry.versions("sum").items] == [1, 2]
    with pytest.raises(ConflictError, match="retired and cannot be served"):
        registry.promote("sum", "staging", 1)


def test_a_model_with_aliases_cannot_be_deleted(registry: Registry, artifacts: dict[str, Path]) -> None:
    registry.register("sum", artifacts["sum"])
    registry.promote("sum", "prod", 1)
    with pytest.raises(ConflictError, match="still has alias\\(es\\) prod"):
        registry.delete("sum")
    registry.register("other", artifacts["sum"])
    registry.delete("other")
    with pytest.raises(ModelNotFound):
        registry.versions("other")
    assert [head.name for head in registry.models().items] == ["sum"]


def test_listing_pages_through_models_versions_and_history(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    for name in ("a", "b", "c"):
        registry.register(name, artifacts["sum"])
    for _ in range(4):
        registry.register("a", artifacts["sum"])
    for version in (1, 2, 3, 4, 5):
        registry.promote("a", "prod", version)

    def collect(fetch) -> list:  # type: ignore[no-untyped-def]
        items, token = [], None
        while True:
            page = fetch(token)
            assert len(page.items) <= 2
            items.extend(page.items)
            token = page.next_token
            if token is None:
                return items

    assert [h.name for h in collect(lambda t: registry.models(limit=2, token=t))] == ["a", "b", "c"]
    assert [v.version for v in collect(lambda t: registry.versions("a", limit=2, token=t))] == [1, 2, 3, 4, 5]
    assert [h.revision for h in collect(lambda t: registry.history("a", "prod", limit=2, token=t))] == [
        5,
        4,
        3,
        2,
        1,
    ]
    with pytest.raises(InvalidInput, match="page size must be between 1 and 100"):
        registry.models(limit=0)
