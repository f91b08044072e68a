"""Adversarial tests of the control plane's reconciler (review of ac3c4b9..2b01b68).

Each test drives the Reconciler one step at a time against the embedded AWS, with the
emulated UpdateEndpoint held `Updating` until the test finishes (or rolls back) it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from maas.control import ReconcileFailed
from maas.errors import ConflictError
from maas.registry.models import TargetPhase
from tests.review.helpers import World, make_world


@pytest.fixture(autouse=True)
def slow_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAAS_SAGEMAKER_UPDATE_SECONDS", "1000")


@pytest.fixture
def world(aws_endpoint: str, model_dir: Path) -> World:
    return make_world(aws_endpoint, model_dir / "sum" / "1" / "model.onnx")


def at_v1(world: World) -> None:
    world.control.promote(world.name, "prod", 1)
    state = world.settle()
    assert state.state is TargetPhase.IN_SERVICE, state
    assert world.variants() == ["v1"]
    assert world.scaled() == {"v1": (1, 4)}


# --- the alias changes while an update is under way -------------------------------------


def test_v2_then_v3_quickly_ends_on_v3_in_service(world: World) -> None:
    at_v1(world)
    world.control.promote(world.name, "prod", 2)
    assert world.reconciler.reconcile(world.name, "prod").state is TargetPhase.UPDATING
    alias = world.control.promote(world.name, "prod", 3)
    state = world.reconciler.reconcile(world.name, "prod")
    assert state.state is TargetPhase.UPDATING and state.revision == alias.revision
    world.finish_update()  # lands on v2
    state = world.settle()  # the next event moves it on to v3
    assert state.state is TargetPhase.IN_SERVICE and state.revision == alias.revision
    assert world.variants() == ["v3"]


def test_autoscaling_survives_an_alias_change_during_an_update(world: World) -> None:
    """Found by the review, fixed: the scaling saved by revision 2's record is dropped when revision 3 records
    its own state (a new revision starts with scaling=None), and v1's targets were already
    deregistered: the endpoint ends on v3 with no autoscaling at all."""
    at_v1(world)
    world.control.promote(world.name, "prod", 2)
    world.reconciler.reconcile(world.name, "prod")
    world.control.promote(world.name, "prod", 3)
    world.reconciler.reconcile(world.name, "prod")
    world.finish_update()
    world.settle()
    assert world.variants() == ["v3"]
    assert world.scaled() == {"v3": (1, 4)}


def test_autoscaling_survives_an_update_sagemaker_rolled_back(world: World) -> None:
    """Found by the review, fixed: start_update deregisters v1's scalable target before UpdateEndpoint; when
    SageMaker rolls the update back to v1, nothing puts it back (the FAILED record drops
    `scaling`), so the endpoint keeps serving v1 without autoscaling, also after a rollback."""
    at_v1(world)
    world.control.promote(world.name, "prod", 2)
    world.reconciler.reconcile(world.name, "prod")
    world.roll_back_update()
    state = world.reconciler.reconcile(world.name, "prod")
    assert state.state is TargetPhase.FAILED and not state.retryable
    assert "did not finish" in (state.reason or "")
    assert world.variants() == ["v1"]
    assert world.scaled() == {"v1": (1, 4)}, "the variant still serving lost its autoscaling"


def test_a_rollback_after_a_failed_update_restores_autoscaling(world: World) -> None:
    at_v1(world)
    world.control.promote(world.name, "prod", 2)
    world.reconciler.reconcile(world.name, "prod")
    world.roll_back_update()
    world.reconciler.reconcile(world.name, "prod")
    world.control.rollback(world.name, "prod")
    state = world.reconciler.reconcile(world.name, "prod")
    assert state.state is TargetPhase.IN_SERVICE
    assert world.scaled() == {"v1": (1, 4)}


def test_a_stale_failure_reason_does_not_fail_a_later_revision(world: World) -> None:
    """After a rolled-back update, the endpoint keeps its FailureReason. A later revision
    whose step recorded `updating` but crashed before UpdateEndpoint must start the update
    on the next step, not be declared rolled back by SageMaker."""
    at_v1(world)
    world.control.promote(world.name, "prod", 2)
    world.reconciler.reconcile(world.name, "prod")
    world.roll_back_update()
    world.reconciler.reconcile(world.name, "prod")  # failed, as it should

    world.control.promote(world.name, "prod", 3)
    original = world.deployer.start_update

    def crash(plan: Any) -> None:
        raise RuntimeError("the Lambda function timed out here")

    world.deployer.start_update = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        world.reconciler.reconcile(world.name, "prod")
    world.deployer.start_update = original  # type: ignore[method-assign]
    state = world.reconciler.reconcile(world.name, "prod")
    assert state.state is TargetPhase.UPDATING, state.reason


def test_canary_then_promote_moves_scaling_to_exactly_the_variants(world: World) -> None:
    at_v1(world)
    world.control.canary(world.name, "prod", {1: 90, 2: 10})
    assert world.settle().state is TargetPhase.IN_SERVICE
    assert sorted(world.variants()) == ["v1", "v2"]
    assert world.scaled() == {"v1": (1, 4), "v2": (1, 4)}
    world.control.promote(world.name, "prod", 2)
    assert world.settle().state is TargetPhase.IN_SERVICE
    assert world.variants() == ["v2"]
    assert world.scaled() == {"v2": (1, 4)}


def test_an_endpoint_without_autoscaling(aws_endpoint: str, model_dir: Path) -> None:
    world = make_world(aws_endpoint, model_dir / "sum" / "1" / "model.onnx", scaling=False)
    world.control.promote(world.name, "prod", 1)
    assert world.settle().state is TargetPhase.IN_SERVICE
    world.control.promote(world.name, "prod", 2)
    assert world.settle().state is TargetPhase.IN_SERVICE
    assert world.scaled() == {}


# --- concurrency ----------------------------------------------------------------------------


def test_two_reconcilers_at_once_start_one_update(world: World) -> None:
    at_v1(world)
    world.control.promote(world.name, "prod", 2)
    calls: list[str] = []
    original = world.deployer.sagemaker.update_endpoint

    def counting(**kwargs: Any) -> Any:
        calls.append(kwargs["EndpointConfigName"])
        return original(**kwargs)

    world.deployer.sagemaker.update_endpoint = counting
    errors: list[BaseException] = []

    def run() -> None:
        try:
            world.reconciler.reconcile(world.name, "prod")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(calls) == 1, calls
    state = world.registry.store.get_target_state(world.name, "prod")
    assert state.state is TargetPhase.UPDATING


def test_a_stale_reconciler_cannot_write_an_older_state(world: World) -> None:
    at_v1(world)
    stale = world.registry.store.get_target_state(world.name, "prod")
    world.control.promote(world.name, "prod", 2)
    world.reconciler.reconcile(world.name, "prod")
    with pytest.raises(ConflictError):
        world.registry.store.put_target_state(stale.model_copy(update={"sequence": stale.sequence + 1}))


# --- aliases that are not the endpoint's, or gone ----------------------------------------


def test_an_alias_the_endpoint_does_not_follow_does_not_read_pending_forever(world: World) -> None:
    """Found by the review, fixed: `staging` of a SageMaker model whose endpoint follows `prod`: the reconciler
    returns None (nothing to do) and records nothing, yet target_of() calls it `pending`
    ("waiting for the reconciler") forever, so `--wait` on it always times out."""
    at_v1(world)
    world.control.promote(world.name, "staging", 2)
    assert world.reconciler.reconcile(world.name, "staging") is None
    state = world.control.wait_for_target(world.name, "staging", timeout=1, poll_seconds=0.2)
    assert state is None or state.state is not TargetPhase.PENDING, state


def test_unalias_leaves_the_endpoint_and_shows_no_target(world: World) -> None:
    at_v1(world)
    world.control.delete_alias(world.name, "prod")
    assert world.control.registry.store.get_alias(world.name, "prod", include_deleted=True).deleted
    assert world.reconciler.reconcile(world.name, "prod") is None
    assert world.variants() == ["v1"]
    alias = world.control.promote(world.name, "prod", 2)
    target = world.control.target(world.name, "prod")
    assert target.state is TargetPhase.PENDING and target.revision == alias.revision
    assert target.events == []


def test_deleting_a_model_purges_its_target_state_and_a_new_one_starts_fresh(world: World) -> None:
    at_v1(world)
    world.control.delete_alias(world.name, "prod")
    world.control.delete(world.name)
    store = world.registry.store
    raw = store.client.get_item(  # type: ignore[attr-defined]
        TableName=store.table_name,  # type: ignore[attr-defined]
        Key={"pk": {"S": f"M#{world.name}"}, "sk": {"S": "T#prod"}},
    )
    assert "Item" not in raw


def test_re_registering_a_deleted_name_sees_no_stale_state(world: World, model_dir: Path) -> None:
    at_v1(world)
    world.control.delete_alias(world.name, "prod")
    world.control.delete(world.name)
    version = world.control.register(world.name, model_dir / "sum" / "1" / "model.onnx", target="sagemaker")
    alias = world.control.promote(world.name, "prod", version.version)
    target = world.control.target(world.name, "prod")
    assert target.state is TargetPhase.PENDING and target.revision == alias.revision
    assert target.events == []


# --- failures -------------------------------------------------------------------------------


def test_a_missing_endpoint_is_pending_with_its_reason(aws_endpoint: str, model_dir: Path) -> None:
    world = make_world(aws_endpoint, model_dir / "sum" / "1" / "model.onnx", endpoint=False)
    world.control.promote(world.name, "prod", 1)
    state = world.reconciler.reconcile(world.name, "prod")
    assert state.state is TargetPhase.PENDING
    assert "cdk deploy" in (state.reason or "")


def test_a_missing_package_fails_then_recovers_without_rewriting_each_sweep(world: World) -> None:
    at_v1(world)
    s3 = world.registry.artifacts.client
    bucket = world.registry.artifacts.bucket
    s3.delete_object(Bucket=bucket, Key=f"artifacts/{world.name}/v3/model.tar.gz")
    world.control.promote(world.name, "prod", 3)
    with pytest.raises(ReconcileFailed):
        world.reconciler.reconcile(world.name, "prod")
    first = world.registry.store.get_target_state(world.name, "prod")
    assert first.state is TargetPhase.FAILED and "package" in (first.reason or "")
    for _ in range(3):
        with pytest.raises(ReconcileFailed):
            world.reconciler.reconcile(world.name, "prod")
    assert world.registry.store.get_target_state(world.name, "prod").sequence == first.sequence
    world.control.package(world.registry.get(world.name, 3))
    assert world.settle().state is TargetPhase.IN_SERVICE
    assert world.variants() == ["v3"]
    assert world.scaled() == {"v3": (1, 4)}


def test_the_sweep_goes_on_past_an_endpoint_that_vanished(world: World) -> None:
    """An endpoint listed by the sweep but deleted before it is described (or a throttled
    DescribeEndpoint) must not stop the sweep of every other endpoint."""
    at_v1(world)
    world.control.promote(world.name, "prod", 2)
    sagemaker = world.deployer.sagemaker
    original = sagemaker.describe_endpoint

    class Vanishing:
        def __getattr__(self, name: str) -> Any:
            return getattr(sagemaker, name)

        def list_endpoints(self, **kwargs: Any) -> Any:
            return {"Endpoints": [{"EndpointName": "maas-aaa-gone"}, {"EndpointName": world.endpoint}]}

        def get_paginator(self, name: str) -> Any:
            outer = self

            class Pages:
                def paginate(self, **kwargs: Any) -> Any:
                    return [outer.list_endpoints()]

            return Pages()

        def describe_endpoint(self, EndpointName: str) -> Any:  # noqa: N803
            if EndpointName == "maas-aaa-gone":
                raise ClientError(
                    {"Error": {"Code": "ValidationException", "Message": "Could not find endpoint"}},
                    "DescribeEndpoint",
                )
            return original(EndpointName=EndpointName)

    world.deployer.sagemaker = Vanishing()
    states = world.reconciler.sweep()
    assert [s.name for s in states] == [world.name]


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)


def test_an_update_endpoint_refusal_is_recorded_as_failed_with_its_reason(world: World) -> None:
    """Found by the review, fixed: when UpdateEndpoint itself is refused (AccessDenied, a ValidationException),
    _fail writes over the `recorded` read at the start of the step, but _start has already
    written `updating` since: the write conflicts, reconcile() retries the whole step 4 times
    back to back (4 UpdateEndpoint calls), then raises ConflictError("... keeps changing"),
    and the alias's state says `updating` with no reason, forever."""
    at_v1(world)
    world.control.promote(world.name, "prod", 2)
    sagemaker = world.deployer.sagemaker
    calls: list[int] = []

    def refused(**kwargs: Any) -> Any:
        calls.append(1)
        raise ClientError(
            {
                "Error": {
                    "Code": "AccessDeniedException",
                    "Message": "not authorized to perform: sagemaker:UpdateEndpoint",
                }
            },
            "UpdateEndpoint",
        )

    sagemaker.update_endpoint = refused
    try:
        world.reconciler.reconcile(world.name, "prod")
        raised: Exception | None = None
    except Exception as error:
        raised = error
    state = world.registry.store.get_target_state(world.name, "prod")
    assert isinstance(raised, ReconcileFailed), (
        f"{type(raised).__name__}: {raised}; {len(calls)} UpdateEndpoint calls"
    )
    assert state.state is TargetPhase.FAILED and "AccessDenied" in (state.reason or ""), state
    # LOW: the first _fail conflicts with the step's own `updating` write, so one event
    # calls the refused UpdateEndpoint several times back to back.
    assert len(calls) == 1, f"{len(calls)} UpdateEndpoint calls for one event"


def test_a_refused_update_endpoint_then_retried_keeps_the_saved_autoscaling(world: World) -> None:
    """Found by the review, fixed: _start saves the scaling and deregisters v1's target, UpdateEndpoint is refused
    (throttled) and FAILED is recorded without `scaling`; the retry that succeeds has nothing
    saved to put back, and v1's target is gone: v2 serves without autoscaling."""
    at_v1(world)
    world.control.promote(world.name, "prod", 2)
    sagemaker = world.deployer.sagemaker
    original = sagemaker.update_endpoint
    calls = {"n": 0}

    def throttled_at_first(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= 1:  # one refusal: each step calls UpdateEndpoint once
            raise throttled("UpdateEndpoint")
        return original(**kwargs)

    sagemaker.update_endpoint = throttled_at_first
    with pytest.raises(ReconcileFailed):
        world.reconciler.reconcile(world.name, "prod")
    assert world.settle().state is TargetPhase.IN_SERVICE  # the retry (stream or sweep)
    assert world.variants() == ["v2"]
    assert world.scaled() == {"v2": (1, 4)}


def test_a_throttled_restore_of_autoscaling_is_retried_not_forgotten(world: World) -> None:
    """Found by the review, fixed: restore_scaling raising a ClientError is recorded as FAILED (without `scaling`);
    the next step sees the endpoint done and records in_service with nothing to restore."""
    at_v1(world)
    world.control.promote(world.name, "prod", 2)
    world.reconciler.reconcile(world.name, "prod")
    world.finish_update()
    original = world.deployer.restore_scaling
    calls = {"n": 0}

    def once_throttled(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise throttled("RegisterScalableTarget")
        original(*args)

    world.deployer.restore_scaling = once_throttled  # type: ignore[method-assign]
    with pytest.raises(ReconcileFailed):
        world.reconciler.reconcile(world.name, "prod")
    assert world.reconciler.reconcile(world.name, "prod").state is TargetPhase.IN_SERVICE
    assert world.scaled() == {"v2": (1, 4)}


def test_a_crash_between_steps_keeps_the_saved_autoscaling(world: World) -> None:
    """A crash (timeout, not an AWS error) after `updating` was recorded and the old targets
    released, before UpdateEndpoint: the next step must still restore the saved scaling."""
    at_v1(world)
    world.control.promote(world.name, "prod", 2)
    sagemaker = world.deployer.sagemaker
    original = sagemaker.update_endpoint
    calls = {"n": 0}

    def crash_once(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TimeoutError("the function timed out")
        return original(**kwargs)

    sagemaker.update_endpoint = crash_once
    with pytest.raises(TimeoutError):
        world.reconciler.reconcile(world.name, "prod")
    assert world.settle().state is TargetPhase.IN_SERVICE
    assert world.scaled() == {"v2": (1, 4)}


def test_the_state_change_event_of_a_deleted_endpoint_is_not_an_error(world: World) -> None:
    """LOW: SageMaker sends a state change as an endpoint is deleted; describing it then fails,
    handle() raises ClientError and EventBridge retries it (4 times, per the stack)."""
    from maas.control.events import handle

    event = {
        "detail-type": "SageMaker Endpoint State Change",
        "detail": {"EndpointName": "maas-no-such-endpoint"},
    }
    assert handle(world.reconciler, event) == {}


def test_a_state_change_event_moves_a_finished_update_to_in_service(world: World) -> None:
    from maas.control.events import handle

    at_v1(world)
    alias = world.control.promote(world.name, "prod", 2)
    world.reconciler.reconcile(world.name, "prod")
    world.finish_update()
    event = {"detail-type": "SageMaker Endpoint State Change", "detail": {"EndpointName": world.endpoint}}
    handle(world.reconciler, event)
    state = world.control.target(world.name, "prod")
    assert state.state is TargetPhase.IN_SERVICE and state.revision == alias.revision
    assert world.scaled() == {"v2": (1, 4)}
