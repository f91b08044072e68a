"""SnapStart's hooks, run as Lambda runs them: the predict handler registers them with
`snapshot_restore_py` at init; the before-snapshot hooks run once, then each restored copy
of the snapshot (here: a forked child of the snapshotted process) runs the after-restore hooks."""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from maas.local.gateway import load_handler_module
from maas.registry import Registry
from tests.conftest import PREDICT_HANDLER

DRAWS = 48


class RuntimeHooks(ModuleType):
    """`snapshot_restore_py` as Lambda's Python 3.12+ runtime provides it: it keeps the hooks."""

    def __init__(self) -> None:
        super().__init__("snapshot_restore_py")
        self.before: list[tuple[Any, tuple[Any, ...]]] = []
        self.after: list[tuple[Any, tuple[Any, ...]]] = []

    def register_before_snapshot(self, hook: Any, *args: Any) -> None:
        self.before.append((hook, args))

    def register_after_restore(self, hook: Any, *args: Any) -> None:
        self.after.append((hook, args))

    def snapshot(self) -> None:
        for hook, args in self.before:
            hook(*args)

    def restore(self) -> None:
        for hook, args in self.after:
            hook(*args)


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> RuntimeHooks:
    runtime = RuntimeHooks()
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    return runtime


def predict_function(registry: Registry, endpoint: str, tmp_path: Path) -> ModuleType:
    """functions/predict/handler.py at init over `registry`, serving `sum` by its prod alias."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        env.setenv("MAAS_REGISTRY_TABLE", registry.store.table_name)  # type: ignore[attr-defined]
        env.setenv("MAAS_ARTIFACT_BUCKET", registry.artifacts.bucket)
        env.setenv("MAAS_ARTIFACT_CACHE_DIR", str(tmp_path / "artifacts"))
        env.setenv("MAAS_PRELOAD", '["sum"]')
        env.setenv("MAAS_ALIAS_TTL_SECONDS", "30")
        return load_handler_module(PREDICT_HANDLER)


def draws_in_restored_copy(function: ModuleType, hooks: RuntimeHooks, *, restore: bool) -> dict[str, Any]:
    """Fork a copy of this (snapshotted) process; it runs the after-restore hooks if `restore`,
    then draws canary arms and random numbers, and reports them."""
    read, write = os.pipe()
    snapshotted = random.getstate()
    child = os.fork()
    if child == 0:  # the restored copy
        code = 0
        try:
            os.close(read)
            # A fork reseeds `random` by itself (os.register_at_fork); a restore does not.
            random.setstate(snapshotted)
            if restore:
                hooks.restore()
            drawn = {
                "arms": [function.dataplane.source.resolve("sum").version for _ in range(DRAWS)],
                "random": random.random(),
                "numpy": float(np.random.random()),
            }
            os.write(write, json.dumps(drawn).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report = pipe.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and report, "the restored copy failed"
    return json.loads(report)  # type: ignore[no-any-return]


@pytest.fixture
def canary(dynamo_registry: Registry, artifacts: dict[str, Path]) -> Registry:
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.canary("sum", "prod", {1: 50, 2: 50})
    return dynamo_registry


def test_the_handler_registers_one_hook_each_and_before_the_snapshot_the_model_loads(
    dynamo_registry: Registry,
    artifacts: dict[str, Path],
    aws_endpoint: str,
    tmp_path: Path,
    hooks: RuntimeHooks,
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])  # no prod yet: init cannot preload it
    function = predict_function(dynamo_registry, aws_endpoint, tmp_path)
    assert len(hooks.before) == 1 and len(hooks.after) == 1
    dynamo_registry.promote("sum", "prod", 1)
    ref = function.dataplane.source.resolve("sum")
    assert ref.cache_key not in function.dataplane._loaded
    hooks.snapshot()
    assert ref.cache_key in function.dataplane._loaded


def test_two_restored_copies_draw_their_own_canary_arms_and_random_numbers(
    canary: Registry, aws_endpoint: str, tmp_path: Path, hooks: RuntimeHooks
) -> None:
    function = predict_function(canary, aws_endpoint, tmp_path)
    hooks.snapshot()
    first, second = (draws_in_restored_copy(function, hooks, restore=True) for _ in range(2))
    assert first["arms"] != second["arms"]
    assert set(first["arms"]) == set(second["arms"]) == {"1", "2"}
    assert first["random"] != second["random"]
    assert first["numpy"] != second["numpy"]


def test_without_the_restore_hooks_the_copies_would_repeat_each_others_draws(
    canary: Registry, aws_endpoint: str, tmp_path: Path, hooks: RuntimeHooks
) -> None:
    # What the hooks are for, shown: copies of one snapshot share every generator's state.
    function = predict_function(canary, aws_endpoint, tmp_path)
    hooks.snapshot()
    first, second = (draws_in_restored_copy(function, hooks, restore=False) for _ in range(2))
    assert first == second


def test_after_a_restore_the_alias_is_read_again_with_new_aws_clients(
    dynamo_registry: Registry,
    artifacts: dict[str, Path],
    aws_endpoint: str,
    tmp_path: Path,
    hooks: RuntimeHooks,
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.promote("sum", "prod", 1)
    function = predict_function(dynamo_registry, aws_endpoint, tmp_path)
    hooks.snapshot()
    source = function.dataplane.source
    clients = (source.registry.store.client, source.registry.artifacts.client)
    dynamo_registry.promote("sum", "prod", 2)  # while the snapshot waits to be restored
    assert source.resolve("sum").version == "1"  # within the TTL, the snapshot's read stands
    hooks.restore()
    assert source.resolve("sum").version == "2"
    assert source.registry.store.client is not clients[0]
    assert source.registry.artifacts.client is not clients[1]
