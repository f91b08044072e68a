"""Loaded versions stay in memory only within the function's budget: the least recently used
is evicted first, a request for it loads it again, and a version serving a request is kept."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from maas.dataplane import DataPlane
from maas.protocol import InferenceRequest
from maas.runtimes.budget import MB
from maas.sources import DirectorySource
from tests import fakes

if TYPE_CHECKING:
    from maas.runtimes import Runtime
    from maas.sources import ModelRef


class CountingSource(DirectorySource):
    """The model directory, counting each load of each version."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, ttl=60.0)
        self.loads: dict[str, int] = {}

    def load(self, ref: ModelRef) -> Runtime:
        self.loads[ref.version] = self.loads.get(ref.version, 0) + 1
        return super().load(ref)


@pytest.fixture(scope="module")
def versions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1 to 4 of `weighty`, 2 MB each, each answering with its own weight."""
    root = tmp_path_factory.mktemp("versions")
    for version in range(1, 5):
        fakes.weighty_model(root / "weighty" / str(version) / "model.onnx", 2, weight=float(version))
    return root


def ask(plane: DataPlane, version: str) -> float:
    request = InferenceRequest.model_validate(
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    )
    data = plane.infer("weighty", request, version=version).response.outputs[0].data
    assert data is not None
    return float(data[0])


ELEMENTS = 2 * MB // 4  # each version sums 2 MB of float32 weights


def test_past_the_budget_the_least_recently_used_version_is_evicted_and_reloaded_on_request(
    versions_dir: Path,
) -> None:
    source = CountingSource(versions_dir)
    plane = DataPlane(source, cache_bytes=5 * MB)  # room for two versions of 2 MB
    for version in ("1", "2", "3"):
        assert ask(plane, version) == float(version) * ELEMENTS
    assert source.loads == {"1": 1, "2": 1, "3": 1}
    ask(plane, "3")
    ask(plane, "2")  # the most recently used two stay loaded
    assert source.loads == {"1": 1, "2": 1, "3": 1}
    assert ask(plane, "1") == ELEMENTS  # evicted, so loaded again; now 3 is the least recent
    assert source.loads == {"1": 2, "2": 1, "3": 1}
    ask(plane, "2")
    assert source.loads["2"] == 1
    ask(plane, "3")
    assert source.loads["3"] == 2


def test_a_version_serving_a_request_is_not_evicted_under_it(versions_dir: Path) -> None:
    source = CountingSource(versions_dir)
    plane = DataPlane(source, cache_bytes=5 * MB)
    ref = source.resolve("weighty", "1")
    with plane.serving(ref) as busy:  # a long request on version 1 while others load
        for version in ("2", "3", "4"):
            ask(plane, version)
        assert busy.predict({"x": np.ones(1, np.float32)})["y"][0] == ELEMENTS
        assert plane.runtime(ref) is busy  # still the loaded one, not loaded twice
    assert source.loads["1"] == 1
    ask(plane, "4")
    ask(plane, "3")  # version 1 is free now, and the least recently used
    ask(plane, "1")
    assert source.loads["1"] == 2


def test_without_a_budget_every_version_stays(versions_dir: Path) -> None:
    source = CountingSource(versions_dir)
    plane = DataPlane(source)
    for _ in range(2):
        for version in ("1", "2", "3", "4"):
            ask(plane, version)
    assert source.loads == {"1": 1, "2": 1, "3": 1, "4": 1}
