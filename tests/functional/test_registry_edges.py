"""Registry promises that mutation testing found no test holding (RELIABILITY.md, "Mutation
testing"): each test here failed against a mutant that survived the rest of the suite. They run
on both stores, in memory and on DynamoDB (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.errors import ConflictError, InvalidInput, ModelNotFound
from maas.registry import Registry
from maas.registry.source import RegistrySource
from maas.registry.store import UnreadableRecord
from tests import fakes


def test_a_served_version_refused_retirement_says_what_to_do(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    registry.promote("sum", "prod", 1)
    with pytest.raises(ConflictError) as refused:
        registry.retire("sum", 1)
    assert refused.value.message == (
        "version 1 of model 'sum' is served by alias(es) prod; point them elsewhere first"
    )


def test_a_retirement_records_who_retired_the_version(registry: Registry, artifacts: dict[str, Path]) -> None:
    registry.register("sum", artifacts["sum"])
    retired = registry.acting_as("arn:aws:iam::1:user/ops").retire("sum", 1)
    assert retired.status_changed_by == "arn:aws:iam::1:user/ops"
    assert registry.get("sum", 1).status_changed_by == "arn:aws:iam::1:user/ops"
    assert registry.get("sum", 1).created_by == "tester"


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (lambda r: r.alias("no such", "prod"), "model name 'no such' is not valid"),
        (lambda r: r.alias("sum", "no such"), "alias 'no such' is not valid"),
        (lambda r: r.history("sum", "no such"), "alias 'no such' is not valid"),
    ],
)
def test_a_bad_name_in_a_read_is_refused_naming_what_it_is(
    registry: Registry, artifacts: dict[str, Path], read: object, message: str
) -> None:
    registry.register("sum", artifacts["sum"])
    with pytest.raises(InvalidInput) as refused:
        read(registry)  # type: ignore[operator]
    assert refused.value.message.startswith(message)


def test_the_history_of_an_alias_that_never_existed_is_a_404_naming_model_and_alias(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    with pytest.raises(ModelNotFound) as missing:
        registry.history("sum", "staging")
    assert missing.value.message == "alias 'staging' of model 'sum' not found"


def test_a_rollback_on_a_stale_revision_is_a_conflict_and_changes_nothing(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    registry.register("sum", artifacts["sum-v2"])
    registry.promote("sum", "prod", 1)
    registry.promote("sum", "prod", 2)  # revision 2
    with pytest.raises(ConflictError, match="is at revision 2, not 1"):
        registry.rollback("sum", "prod", expected_revision=1)
    assert registry.alias("sum", "prod").weights == {2: 100}
    assert registry.rollback("sum", "prod", expected_revision=2).weights == {1: 100}


def test_aliases_are_listed_by_name_whatever_order_they_were_made_in(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    for alias in ("staging", "canary", "prod", "blue"):
        registry.promote("sum", alias, 1)
    assert [a.alias for a in registry.aliases("sum")] == ["blue", "canary", "prod", "staging"]


def test_a_model_keeps_the_creation_time_of_its_first_version(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    (created,) = [h.created_at for h in registry.models().items]
    registry.register("sum", artifacts["sum-v2"])
    assert [h.created_at for h in registry.models().items] == [created]
    assert registry.get("sum", 2).created_at >= created


def test_a_model_deleted_and_registered_again_starts_with_no_aliases_or_history(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    registry.promote("sum", "prod", 1)
    registry.delete_alias("sum", "prod")
    registry.delete("sum")
    registry.register("sum", artifacts["sum"])
    assert registry.aliases("sum") == []
    with pytest.raises(ModelNotFound):
        registry.history("sum", "prod")
    promoted = registry.promote("sum", "prod", 2)
    assert promoted.revision == 1
    assert [c.action for c in registry.history("sum", "prod").items] == ["promote"]


def test_a_model_with_more_versions_than_one_batch_delete_holds_is_deleted_whole(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    for _ in range(27):  # BatchWriteItem takes at most 25 requests
        registry.register("sum", artifacts["sum"])
    registry.delete("sum")
    with pytest.raises(ModelNotFound):
        registry.versions("sum")
    assert registry.register("sum", artifacts["sum"]).version == 28
    assert [v.version for v in registry.versions("sum").items] == [28]


def test_a_deletion_on_a_stale_read_of_the_aliases_is_a_conflict(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    registry.register("sum", artifacts["sum"])
    epoch = registry.store.head("sum").alias_epoch  # type: ignore[union-attr]
    registry.promote("sum", "prod", 1)
    registry.delete_alias("sum", "prod")
    with pytest.raises(ConflictError, match="changed meanwhile"):
        registry.store.delete_model("sum", epoch, "tester")
    assert [v.version for v in registry.versions("sum").items] == [1]


def test_a_purge_another_caller_finished_is_not_an_error(
    dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.delete("sum")
    dynamo_registry.store._purge("sum")  # type: ignore[attr-defined]  # as a second, slower deleter would
    assert dynamo_registry.register("sum", artifacts["sum"]).version == 2


def test_an_unreadable_record_names_the_problem_without_links_or_values(registry: Registry) -> None:
    from pydantic import BaseModel, ValidationError

    class Probe(BaseModel):
        version: int

    with pytest.raises(ValidationError) as invalid:
        Probe.model_validate({"version": "secret-value"})
    message = UnreadableRecord.invalid("version 3 of model 'sum'", invalid.value).message
    assert "errors.pydantic.dev" not in message and "secret-value" not in message
    assert message.startswith("version 3 of model 'sum' cannot be read: version: ")


def test_the_same_draw_key_always_draws_the_same_canary_arm(
    dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.register("sum", artifacts["sum-v2"])
    dynamo_registry.canary("sum", "prod", {1: 50, 2: 50})
    source = RegistrySource(dynamo_registry)
    for key in ("inputs/sum/a.jsonl#1", "inputs/sum/b.jsonl#7", "inputs/sum/c.csv#3"):
        drawn = {source.resolve("sum", draw_key=key).version for _ in range(20)}
        assert len(drawn) == 1, (key, drawn)
    # Without a key the draw is per request: both arms answer.
    assert {source.resolve("sum").version for _ in range(60)} == {"1", "2"}


def test_a_sagemaker_model_is_served_by_the_endpoint_its_prefix_names(
    dynamo_registry: Registry, tmp_path: Path
) -> None:
    dynamo_registry.register("big", fakes.sum_model(tmp_path / "model.onnx"), target="sagemaker")
    dynamo_registry.promote("big", "prod", 1)
    source = RegistrySource(dynamo_registry, endpoint_prefix="team-a", sagemaker_client=object())
    runtime = source.load(source.resolve("big"))
    assert runtime.endpoint == "team-a-big"  # type: ignore[attr-defined]


TOKEN_REFUSED = "the page token is not one this registry issued for this listing"


@pytest.mark.parametrize(
    "position",
    ["7", True, -1, 2.5, {"pk": {"S": "M#sum"}}, {"pk": {"S": "M#sum"}, "sk": {"S": "V#1"}, "x": {"S": "1"}}],
)
def test_a_forged_page_token_of_the_right_listing_is_refused_with_the_reason(
    registry: Registry, artifacts: dict[str, Path], position: object
) -> None:
    from maas.registry.store import encode_token

    registry.register("sum", artifacts["sum"])
    registry.register("sum", artifacts["sum"])
    issued = registry.versions("sum", limit=1).next_token
    assert issued is not None
    import base64
    import json

    listing = json.loads(base64.urlsafe_b64decode(issued))["for"]
    with pytest.raises(InvalidInput) as refused:
        registry.versions("sum", limit=1, token=encode_token(listing, position))
    assert refused.value.message == TOKEN_REFUSED


def test_a_registration_reports_its_upload_progress_and_keeps_the_files_suffix(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    sent: list[int] = []
    version = registry.register("sum", artifacts["sum"], progress=sent.append)
    assert sum(sent) == artifacts["sum"].stat().st_size == version.size
    assert version.artifact_key == f"artifacts/sum/{version.sha256}/model.onnx"
    tflite = registry.register("digits", artifacts["tflite"])
    assert tflite.artifact_key.endswith("/model.tflite")


def test_a_model_creation_time_is_a_timestamp(registry: Registry, artifacts: dict[str, Path]) -> None:
    from datetime import datetime

    registry.register("sum", artifacts["sum"])
    (head,) = registry.models().items
    assert datetime.fromisoformat(head.created_at).tzinfo is not None


def test_only_onnx_files_can_target_sagemaker_and_the_refusal_says_why(
    registry: Registry, artifacts: dict[str, Path]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        registry.register("digits", artifacts["tflite"], target="sagemaker")
    assert refused.value.message == (
        "cannot register 'model.tflite' for target sagemaker: SageMaker endpoints run Triton's "
        "ONNX Runtime backend, so the artifact must be an .onnx file"
    )
    assert registry.register("sum", artifacts["sum"], target="sagemaker").target.value == "sagemaker"


def test_a_record_dynamodb_refuses_as_too_large_is_an_invalid_input_saying_so(
    dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    """The registry checks a record's size before writing it; were that check ever passed, DynamoDB's
    own refusal would still reach the caller as a 400 that says what is wrong."""
    good = dynamo_registry.register("sum", artifacts["sum"])
    huge = good.model_copy(update={"labels": {"notes": "x" * 500_000}})
    with pytest.raises(InvalidInput) as refused:
        dynamo_registry.store.add_version("sum", lambda number: huge.model_copy(update={"version": number}))
    assert refused.value.message == "the record is larger than the 400 KB a DynamoDB item holds"
    assert [v.version for v in dynamo_registry.versions("sum").items] == [1]


def test_a_bad_alias_name_in_a_request_path_is_refused_naming_it(
    dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])
    with pytest.raises(InvalidInput) as refused:
        RegistrySource(dynamo_registry).resolve("sum", "no such")
    assert refused.value.message.startswith("alias 'no such' is not valid")
