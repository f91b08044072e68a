"""`maas release` of a SageMaker model over the control plane: does the canary watch the canary?"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from maas.cli.common import EXIT_CODES  # noqa: F401  (the CLI package imports cleanly)
from maas.config import CanaryPolicy, ReleaseConfig
from maas.release import Release
from tests.review.helpers import World, make_world


@pytest.fixture(autouse=True)
def slow_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAAS_SAGEMAKER_UPDATE_SECONDS", "1000")


class WatchingCloudWatch:
    """One quiet alarm; records where the alias's endpoint stood at each look."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.seen: list[str] = []

    def describe_alarms(self, AlarmNamePrefix: str, **ignored: Any) -> dict:  # noqa: N803
        state = self.world.control.target(self.world.name, "prod")
        self.seen.append(state.state.value if state else "none")
        return {"MetricAlarms": [{"AlarmName": "maas-errors", "StateValue": "OK"}]}


def test_the_canary_of_a_sagemaker_model_is_watched_once_the_endpoint_serves_it(
    aws_endpoint: str, model_dir: Path
) -> None:
    """Found by the review (regression), fixed: before this change `maas release` moved the endpoint in-process and
    waited for it (EndpointDeployer.sync) before the canary's minutes began. Now on_alias only
    prints the target state (`maas release` has no --wait), so the alarms are watched while the
    endpoint still serves the old version; the release then promotes to 100% having watched
    nothing of the canary."""
    world = make_world(aws_endpoint, model_dir / "sum" / "1" / "model.onnx", versions=2)
    world.control.promote(world.name, "prod", 1)
    world.settle()
    cloudwatch = WatchingCloudWatch(world)
    # The reconciler, as the stream and the sweep run it: a step, then SageMaker finishing.
    stop = threading.Event()

    def reconcile_in_the_background() -> None:
        while not stop.wait(0.05):
            try:
                world.reconciler.reconcile(world.name, "prod")
                world.finish_update()
            except Exception:  # a step that loses a race is taken again, as the sweep would
                continue

    reconciler = threading.Thread(target=reconcile_in_the_background, daemon=True)
    reconciler.start()
    release = Release(
        world.registry,
        None,  # type: ignore[arg-type]  (the canary step calls no API)
        ReleaseConfig(canary=CanaryPolicy(weight=10, minutes=0.002, poll_seconds=0.02)),
        alarm_prefix="maas",
        cloudwatch=cloudwatch,
        say=lambda line: None,
        control=world.control,
    )
    try:
        assert release._canary(world.name, 2, 1) is None
    finally:
        stop.set()
        reconciler.join()
    assert cloudwatch.seen and set(cloudwatch.seen) == {"in_service"}, cloudwatch.seen
