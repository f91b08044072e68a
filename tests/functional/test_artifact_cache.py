"""Downloaded artifacts and loaded versions stay within the function's budgets: with more
versions than fit, the least recently used leaves memory and its file leaves /tmp, a request
for it downloads and loads it again, and the most recently used stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from maas.dataplane import DataPlane
from maas.errors import ModelNotReady
from maas.protocol import InferenceRequest
from maas.registry import Registry, RegistrySource
from maas.runtimes.budget import MB
from tests import fakes

REQUEST = InferenceRequest.model_validate(
    {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
)
ELEMENTS = 2 * MB // 4  # each version sums 2 MB of float32 weights, each with its own weight


@pytest.fixture
def four_versions(dynamo_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    folder = tmp_path_factory.mktemp("weighty")
    for version in range(1, 5):
        dynamo_registry.register(
            "weighty", fakes.weighty_model(folder / f"v{version}.onnx", 2, weight=float(version))
        )
    return dynamo_registry


def ask(plane: DataPlane, version: str) -> float:
    data = plane.infer("weighty", REQUEST, version=version).response.outputs[0].data
    assert data is not None
    return float(data[0]) / ELEMENTS


def on_disk(cache_dir: Path, registry: Registry) -> set[str]:
    """The versions whose artifact is in the cache directory."""
    files = {path.parent.name for path in cache_dir.glob("*/model.onnx")}
    return {str(v.version) for v in registry.versions("weighty").items if v.sha256 in files}


class CountingSource(RegistrySource):
    def __init__(self, registry: Registry, **options: object) -> None:
        super().__init__(registry, **options)  # type: ignore[arg-type]
        self.downloads = 0
        fetch = registry.artifacts.fetch

        def counted(*args: object) -> Path:
            self.downloads += 1
            return fetch(*args)  # type: ignore[arg-type]

        registry.artifacts.fetch = counted  # type: ignore[method-assign]


def test_past_both_budgets_the_least_recently_used_version_leaves_memory_and_disk(
    four_versions: Registry, tmp_path: Path
) -> None:
    source = CountingSource(four_versions, cache_dir=tmp_path, cache_disk_bytes=5 * MB)
    plane = DataPlane(source, cache_bytes=5 * MB)  # room for two versions of 2 MB, in each
    for version in ("1", "2", "3"):
        assert ask(plane, version) == float(version)
    assert on_disk(tmp_path, four_versions) == {"2", "3"}
    assert ask(plane, "3") == 3.0 and ask(plane, "2") == 2.0
    assert source.downloads == 3  # the two most recent are served from memory
    assert ask(plane, "1") == 1.0  # downloaded and loaded again, in place of version 3 in memory
    assert source.downloads == 4
    # On disk the oldest download goes: version 2's file, whose model is loaded anyway.
    assert on_disk(tmp_path, four_versions) == {"1", "3"}
    assert ask(plane, "3") == 3.0  # loaded again from its file, with no download
    assert source.downloads == 4
    assert ask(plane, "2") == 2.0  # out of memory and off disk: downloaded again
    assert source.downloads == 5


def test_an_artifact_larger_than_the_disk_budget_is_not_downloaded(
    four_versions: Registry, tmp_path: Path
) -> None:
    plane = DataPlane(RegistrySource(four_versions, cache_dir=tmp_path, cache_disk_bytes=1 * MB))
    with pytest.raises(ModelNotReady) as refused:
        ask(plane, "1")
    assert refused.value.message.endswith(
        "is not ready: the artifact is 2.0 MB, more than the 1 MB of disk this function keeps "
        "for artifacts (MAAS_CACHE_DISK_MB)"
    )
    assert not list(tmp_path.glob("*/*"))


def test_artifacts_an_earlier_process_left_in_tmp_count_against_the_budget(
    four_versions: Registry, tmp_path: Path
) -> None:
    """Lambda keeps /tmp when a function's process restarts: what it holds is counted, oldest first."""
    earlier = DataPlane(RegistrySource(four_versions, cache_dir=tmp_path))
    for version in ("1", "2"):
        ask(earlier, version)
    stale = tmp_path / ("0" * 64) / ".download-crashed"
    stale.parent.mkdir()
    stale.write_bytes(b"half a download")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    plane = DataPlane(RegistrySource(four_versions, cache_dir=tmp_path, cache_disk_bytes=5 * MB))
    ask(plane, "3")
    assert on_disk(tmp_path, four_versions) == {"2", "3"}
    assert not stale.exists()


def test_a_file_deleted_from_tmp_behind_the_cache_is_downloaded_again(
    four_versions: Registry, tmp_path: Path
) -> None:
    source = RegistrySource(four_versions, cache_dir=tmp_path, cache_disk_bytes=5 * MB)
    ask(DataPlane(source), "1")
    for file in tmp_path.glob("*/model.onnx"):
        file.unlink()
    assert ask(DataPlane(source), "1") == 1.0
