"""TargetState records: the same contract in memory and on DynamoDB (no test covered either)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.errors import ConflictError
from maas.registry import Registry
from maas.registry.models import TargetPhase, TargetState
from tests.functional.conftest import make_registry


@pytest.fixture(params=["memory", "dynamodb"])
def registry(request: pytest.FixtureRequest, aws_endpoint: str) -> Registry:
    return make_registry(request.param, aws_endpoint)


def state(revision: int, sequence: int, phase: TargetPhase = TargetPhase.UPDATING) -> TargetState:
    return TargetState(name="sum", alias="prod", revision=revision, state=phase, sequence=sequence)


def test_writes_are_conditional_on_the_sequence_and_the_alias_revision(
    registry: Registry, model_dir: Path
) -> None:
    registry.register("sum", model_dir / "sum" / "1" / "model.onnx")
    registry.register("sum", model_dir / "sum" / "2" / "model.onnx")
    store = registry.store
    registry.promote("sum", "prod", 1)
    store.put_target_state(state(1, 1))
    with pytest.raises(ConflictError):
        store.put_target_state(state(1, 1))  # a second first write
    with pytest.raises(ConflictError):
        store.put_target_state(state(1, 3))  # skips one
    store.put_target_state(state(1, 2, TargetPhase.IN_SERVICE))
    registry.promote("sum", "prod", 2)
    with pytest.raises(ConflictError):
        store.put_target_state(state(1, 3))  # the alias moved on
    store.put_target_state(state(2, 3))
    assert store.get_target_state("sum", "prod").revision == 2
    with pytest.raises(ConflictError):
        store.put_target_state(
            TargetState(name="sum", alias="nope", revision=1, state=TargetPhase.PENDING, sequence=1)
        )


def test_deleting_the_model_removes_its_target_states(registry: Registry, model_dir: Path) -> None:
    registry.register("sum", model_dir / "sum" / "1" / "model.onnx")
    registry.promote("sum", "prod", 1)
    registry.store.put_target_state(state(1, 1))
    registry.delete_alias("sum", "prod")
    registry.delete("sum")
    assert registry.store.get_target_state("sum", "prod") is None
