"""Adversarial tests of `maas models` over the control plane (promote --wait, show, endpoint --sync)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import pytest

from maas.cli import main
from maas.registry.models import TargetPhase
from tests.review.helpers import World, make_world


@pytest.fixture(autouse=True)
def slow_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAAS_SAGEMAKER_UPDATE_SECONDS", "1000")


@pytest.fixture
def world(aws_endpoint: str, model_dir: Path) -> World:
    return make_world(aws_endpoint, model_dir / "sum" / "1" / "model.onnx")


def cli(capsys: pytest.CaptureFixture[str], world: World, *args: str) -> tuple[int, str, str]:
    code = main(
        ["models", "--endpoint-url", world.url, "--table", world.registry.store.table_name,  # type: ignore[attr-defined]
         "--bucket", world.registry.artifacts.bucket, "--endpoint-prefix", "maas", *args]
    )  # fmt: skip
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_wait_on_an_alias_the_endpoint_does_not_follow_returns_at_once(
    capsys: pytest.CaptureFixture[str], world: World
) -> None:
    """Found by the review (CLI side of the `pending forever` defect), fixed: `promote --alias staging --wait`
    of a SageMaker model whose endpoint follows prod waits out the whole timeout (3600 s by
    default), then exits 2 saying `pending (waiting for the reconciler ...)`."""
    # The reconciler on the stream takes its step on the change, as it does in AWS and maas dev.
    stop = threading.Event()

    def reconcile_staging() -> None:
        while not stop.wait(0.05):
            with contextlib.suppress(Exception):
                world.reconciler.reconcile(world.name, "staging")

    background = threading.Thread(target=reconcile_staging, daemon=True)
    background.start()
    began = time.monotonic()
    try:
        code, _out, err = cli(capsys, world, "promote", world.name, "2", "--alias", "staging", "--wait", "3")
    finally:
        stop.set()
        background.join()
    took = time.monotonic() - began
    assert took < 2, f"waited {took:.1f}s; exit {code}; {err}"
    assert code == 0, err


def test_endpoint_sync_retries_an_update_sagemaker_rolled_back(
    capsys: pytest.CaptureFixture[str], world: World
) -> None:
    world.control.promote(world.name, "prod", 1)
    world.settle()
    world.control.promote(world.name, "prod", 2)
    world.reconciler.reconcile(world.name, "prod")
    world.roll_back_update()
    world.reconciler.reconcile(world.name, "prod")
    code, _out, err = cli(capsys, world, "endpoint", world.name)
    assert code == 2 and "failed" in err, err
    code, _out, err = cli(capsys, world, "endpoint", world.name, "--sync")
    assert code == 0, err
    assert world.registry.store.get_target_state(world.name, "prod").state is TargetPhase.UPDATING


def test_show_json_and_table_carry_the_target(capsys: pytest.CaptureFixture[str], world: World) -> None:
    world.control.promote(world.name, "prod", 1)
    code, out, err = cli(capsys, world, "show", world.name, "--json")
    assert code == 0, err
    assert json.loads(out)["targets"]["prod"]["state"] == "pending"
    code, out, err = cli(capsys, world, "show", world.name)
    assert "ENDPOINT STATE" in out and "pending" in out


def test_lambda_only_models_show_no_target_anywhere(
    capsys: pytest.CaptureFixture[str], world: World, model_dir: Path
) -> None:
    world.control.register("plain" + world.name, model_dir / "sum" / "1" / "model.onnx")
    name = "plain" + world.name
    code, out, err = cli(capsys, world, "promote", name, "1", "--wait", "5")
    assert (code, err) == (0, ""), err
    code, out, err = cli(capsys, world, "show", name, "--json")
    assert set(json.loads(out)) == {"versions", "aliases"}
    code, out, err = cli(capsys, world, "show", name)
    assert "ENDPOINT" not in out and err == ""
