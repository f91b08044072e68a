"""The registry's rules, run against the in-memory store and against DynamoDB on moto."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import pytest

from maas.dataplane import DataPlane
from maas.errors import ConflictError, InvalidInput, ModelNotFound
from maas.protocol import InferenceRequest
from maas.registry import Registry, RegistrySource, Target, UnreadableRecord, VersionStatus, sha256_of


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


# Content addressing: each version keeps its bytes, and serves its own answers.


def test_different_files_get_different_addresses_and_v1_still_serves_v1_after_v2(
    registry: Registry, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    s3, bucket = registry.artifacts.client, registry.artifacts.bucket
    v1 = registry.register("sum", artifacts["sum"])
    stored_v1 = s3.get_object(Bucket=bucket, Key=v1.artifact_key)["Body"].read()
    v2 = registry.register("sum", artifacts["sum-v2"])

    assert (v1.sha256, v2.sha256) == (sha256_of(artifacts["sum"]), sha256_of(artifacts["sum-v2"]))
    assert v1.sha256 != v2.sha256
    assert v1.sha256 in v1.artifact_key and v2.sha256 in v2.artifact_key
    assert s3.get_object(Bucket=bucket, Key=v1.artifact_key)["Body"].read() == stored_v1
    assert stored_v1 == artifacts["sum"].read_bytes()

    registry.promote("sum", "prod", 1)
    # A cold function: nothing cached, everything fetched by its recorded address and checked.
    plane = DataPlane(RegistrySource(registry, cache_dir=tmp_path / "cold"))
    assert served_sum(plane, None) == ("1", [2.0, 3.0, 4.0])
    assert served_sum(plane, "2") == ("2", [3.0, 4.0, 5.0])
    assert served_sum(plane, "1") == ("1", [2.0, 3.0, 4.0])


def served_sum(plane: DataPlane, version: str | None) -> tuple[str | None, list[float]]:
    request = InferenceRequest.model_validate(
        {
            "inputs": [
                {"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
                {"name": "b", "shape": [1, 3], "datatype": "FP32", "data": [1, 1, 1]},
            ],
            "outputs": [{"name": "sum"}],
        }
    )
    response = plane.infer("sum", request, version).response
    return response.model_version, list(response.outputs[0].data)


# Metrics are numbers a reader can compare: a NaN or an infinity is refused, not stored as null.


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_metric_that_is_not_a_finite_number_is_refused_and_nothing_is_registered(
    registry: Registry, artifacts: dict[str, Path], value: float
) -> None:
    with pytest.raises(InvalidInput, match=r"metric 'accuracy' is .*; metrics must be finite numbers"):
        registry.register("sum", artifacts["sum"], metrics={"f1": 0.5, "accuracy": value})
    with pytest.raises(ModelNotFound):
        registry.versions("sum")


def test_labels_and_metrics_too_large_for_one_record_are_refused_before_anything_is_stored(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    with pytest.raises(InvalidInput, match=r"the version record would be .* KB; labels, metrics"):
        registry.register("sum", artifacts["sum"], labels={"notes": "x" * 450_000})
    with pytest.raises(InvalidInput, match=r"the version record would be .* KB; labels, metrics"):
        registry.register("sum", artifacts["sum"], metrics={f"metric-{n}": 0.5 for n in range(40_000)})
    with pytest.raises(ModelNotFound):
        registry.versions("sum")
    listed = registry.artifacts.client.list_objects_v2(Bucket=registry.artifacts.bucket, Prefix="artifacts/")
    assert listed["KeyCount"] == 0
    # Large but within the limit is fine.
    assert registry.register("sum", artifacts["sum"], labels={"notes": "x" * 100_000}).version == 1


# Version numbers are never reused, and an alias can be deleted like any other alias change.


def test_a_deleted_model_registered_again_never_reuses_a_version_number(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    registry.register("sum", artifacts["sum"])
    registry.delete("sum")
    assert registry.models().items == []
    with pytest.raises(ModelNotFound):
        registry.get("sum", 1)

    again = registry.register("sum", artifacts["sum-v2"])
    assert again.version == 3
    assert [v.version for v in registry.versions("sum").items] == [3]
    with pytest.raises(ModelNotFound, match="model 'sum' version '1' not found"):
        registry.get("sum", 1)
    assert [(h.name, h.latest_version) for h in registry.models().items] == [("sum", 3)]


def test_an_alias_is_deleted_on_the_revision_read_and_the_deletion_is_in_its_history(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    registry.register("sum", artifacts["sum"])
    registry.promote("sum", "prod", 1)
    registry.promote("sum", "prod", 2)
    with pytest.raises(ConflictError, match="is at revision 2, not 1"):
        registry.delete_alias("sum", "prod", expected_revision=1)
    assert registry.alias("sum", "prod").weights == {2: 100}

    deletion = registry.delete_alias("sum", "prod", expected_revision=2)
    assert (deletion.action, deletion.revision, deletion.previous, deletion.by) == (
        "delete",
        3,
        {2: 100},
        "tester",
    )
    with pytest.raises(ModelNotFound, match="alias 'prod' of model 'sum' not found"):
        registry.alias("sum", "prod")
    with pytest.raises(ModelNotFound, match="alias 'prod' of model 'sum' not found"):
        registry.delete_alias("sum", "prod")
    assert registry.aliases("sum") == []
    assert [(h.action, h.weights, h.previous) for h in registry.history("sum", "prod").items] == [
        ("delete", {}, {2: 100}),
        ("promote", {2: 100}, {1: 100}),
        ("promote", {1: 100}, None),
    ]
    assert registry.retire("sum", 2).status is VersionStatus.RETIRED

    # Re-created, the alias counts on from its last revision and has nothing to roll back to.
    recreated = registry.promote("sum", "prod", 1)
    assert recreated.revision == 4
    with pytest.raises(ConflictError, match="no earlier target to roll back to"):
        registry.rollback("sum", "prod")

    registry.delete_alias("sum", "prod")
    registry.delete("sum")  # a model once promoted can be deleted
    assert registry.models().items == []


# Client input a store cannot hold is refused with the limit named.


def test_a_canary_over_more_versions_than_one_alias_write_holds_is_refused(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    for _ in range(100):
        registry.register("sum", artifacts["sum"])

    def spread(count: int) -> dict[int, int]:
        weights = dict.fromkeys(range(1, count + 1), 1)
        weights[1] += 100 - count
        return weights

    # One DynamoDB transaction holds 100 items; an alias write uses 4 besides one per version.
    assert registry.canary("sum", "prod", spread(96)).versions == list(range(1, 97))
    for count in (97, 100):
        with pytest.raises(
            InvalidInput, match=f"a canary may split an alias between at most 96 versions, not {count}"
        ):
            registry.canary("sum", "prod", spread(count))
    assert registry.alias("sum", "prod").revision == 1


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        "bm90IGpzb24",  # base64 of "not json"
        base64.urlsafe_b64encode(b'{"junk": true}').decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"pk": {"S": "M#other"}, "sk": {"S": "V#0000000001"}}').decode(),
        "-1",
        "1e3",
    ],
)
def test_a_page_token_this_registry_did_not_issue_is_refused(
    registry: Registry, artifacts: dict[str, Path], token: str
) -> None:
    registry.register("sum", artifacts["sum"])
    registry.promote("sum", "prod", 1)
    for read in (
        lambda: registry.versions("sum", limit=1, token=token),
        lambda: registry.models(limit=1, token=token),
        lambda: registry.history("sum", "prod", limit=1, token=token),
    ):
        with pytest.raises(InvalidInput, match="the page token is not one this registry issued"):
            read()


def test_a_page_token_is_good_only_for_the_listing_it_came_from(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    for name in ("a", "b"):
        registry.register(name, artifacts["sum"])
        registry.register(name, artifacts["sum"])
        registry.promote(name, "prod", 1)
        registry.promote(name, "prod", 2)
    token_of_a = registry.versions("a", limit=1).next_token
    assert token_of_a is not None
    with pytest.raises(InvalidInput, match="the page token is not one this registry issued"):
        registry.versions("b", limit=1, token=token_of_a)
    with pytest.raises(InvalidInput, match="the page token is not one this registry issued"):
        registry.history("a", "prod", limit=1, token=token_of_a)
    with pytest.raises(InvalidInput, match="the page token is not one this registry issued"):
        registry.models(limit=1, token=token_of_a)
    assert [v.version for v in registry.versions("a", limit=1, token=token_of_a).items] == [2]


# Names: plain ASCII, whole (no trailing newline), unique regardless of case.


# "\uff53\uff55\uff4d" is "sum" in fullwidth letters.
@pytest.mark.parametrize(
    "name", ["sum\n", "sum\r\n", "modèle", "名前", "sum\x00", "\uff53\uff55\uff4d", "sum²"]
)
def test_a_name_that_is_not_plain_ascii_is_refused_as_model_or_alias(
    registry: Registry, artifacts: dict[str, Path], name: str
) -> None:
    with pytest.raises(InvalidInput, match="is not valid"):
        registry.register(name, artifacts["sum"])
    registry.register("sum", artifacts["sum"])
    with pytest.raises(InvalidInput, match="is not valid"):
        registry.promote("sum", name, 1)
    with pytest.raises(InvalidInput, match="is not valid"):
        registry.versions(name)
    assert [h.name for h in registry.models().items] == ["sum"]
    assert registry.aliases("sum") == []


def test_an_alias_named_like_a_version_number_is_refused(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    # /v2/models/sum/versions/2 means version 2: an alias '2' could never be reached.
    registry.register("sum", artifacts["sum"])
    with pytest.raises(InvalidInput, match="alias '2' is not valid: a number names a version"):
        registry.promote("sum", "2", 1)


def test_a_model_name_is_unique_regardless_of_case(registry: Registry, artifacts: dict[str, Path]) -> None:
    registry.register("digits", artifacts["digits"])
    with pytest.raises(ConflictError, match="model name 'Digits' is taken by model 'digits'"):
        registry.register("Digits", artifacts["digits"])
    registry.delete("digits")
    # A deleted model keeps its name, as it keeps its version numbers.
    with pytest.raises(ConflictError, match="model name 'DIGITS' is taken by model 'digits'"):
        registry.register("DIGITS", artifacts["digits"])
    assert registry.register("digits", artifacts["digits"]).version == 2
    assert [h.name for h in registry.models().items] == ["digits"]
    listed = registry.artifacts.client.list_objects_v2(Bucket=registry.artifacts.bucket, Prefix="artifacts/D")
    assert listed["KeyCount"] == 0


def test_an_alias_name_is_unique_regardless_of_case(registry: Registry, artifacts: dict[str, Path]) -> None:
    registry.register("sum", artifacts["sum"])
    registry.promote("sum", "prod", 1)
    with pytest.raises(ConflictError, match="alias name 'Prod' of model 'sum' is taken by alias 'prod'"):
        registry.promote("sum", "Prod", 1)
    assert [a.alias for a in registry.aliases("sum")] == ["prod"]
    registry.delete_alias("sum", "prod")
    assert registry.promote("sum", "Prod", 1).revision == 1
    with pytest.raises(ConflictError, match="alias name 'prod' of model 'sum' is taken by alias 'Prod'"):
        registry.promote("sum", "prod", 1)


# One unreadable record (say, what the old code wrote for a NaN metric) spoils no other read.


def test_an_unreadable_record_is_reported_and_every_other_read_of_its_model_works(
    dynamo_registry: Registry, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    registry = dynamo_registry
    registry.register("sum", artifacts["sum"])
    registry.register("sum", artifacts["sum-v2"])
    registry.promote("sum", "prod", 2)
    broken = registry.register("sum", artifacts["sum"]).model_dump(mode="json")
    broken["metrics"] = {"accuracy": None}  # what {"metrics": {"accuracy": "NaN"}} used to store
    plant(registry, "V#0000000003", json.dumps(broken))
    plant(registry, "V#0000000004", "{not json")
    plant(registry, "A#staging", json.dumps({"alias": "staging"}))
    plant(registry, "H#prod#0000000000", "[]")
    dynamo_registry.store.client.update_item(  # type: ignore[attr-defined]
        TableName=dynamo_registry.store.table_name,  # type: ignore[attr-defined]
        Key={"pk": {"S": "M#sum"}, "sk": {"S": "#HEAD"}},
        UpdateExpression="SET latest = :four",
        ExpressionAttributeValues={":four": {"N": "4"}},
    )

    page = registry.versions("sum")
    assert [v.version for v in page.items] == [1, 2]
    assert page.unreadable == ["version 3", "version 4"]
    assert [a.alias for a in registry.aliases("sum")] == ["prod"]
    assert [h.revision for h in registry.history("sum", "prod").items] == [1]
    with pytest.raises(UnreadableRecord, match=r"version 3 of model 'sum' cannot be read: metrics\.accuracy"):
        registry.get("sum", 3)

    plane = DataPlane(RegistrySource(registry, cache_dir=tmp_path))
    assert plane.model_metadata("sum").versions == ["1", "2"]
    assert served_sum(plane, None) == ("2", [3.0, 4.0, 5.0])
    assert registry.retire("sum", 1).status is VersionStatus.RETIRED
    assert registry.promote("sum", "prod", 2).revision == 2
    assert registry.register("sum", artifacts["sum"]).version == 5


def plant(registry: Registry, sort_key: str, doc: str) -> None:
    """Write an item straight into the table, as a bug or a hand edit would."""
    registry.store.client.put_item(  # type: ignore[attr-defined]
        TableName=registry.store.table_name,  # type: ignore[attr-defined]
        Item={"pk": {"S": "M#sum"}, "sk": {"S": sort_key}, "doc": {"S": doc}, "status": {"S": "active"}},
    )
