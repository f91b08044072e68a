"""Where the data plane finds models: a small interface and the directory source.

The registry's source (`maas.registry.RegistrySource`) has the same interface; which source
a function uses is decided by its composition root (`functions/predict/composition.py`).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from maas.errors import ArtifactError, ModelNotFound
from maas.names import ModelRef, check_name, is_safe_name, is_version_number
from maas.runtimes import SUFFIXES, framework_of, load_runtime

if TYPE_CHECKING:
    from maas.runtimes import Runtime


class ModelSource(ABC):
    """Resolves a model name (and optional version) to a loadable version."""

    @abstractmethod
    def resolve(self, name: str, version: str | None = None, *, draw_key: str | None = None) -> ModelRef:
        """The version to serve; raises ModelNotFound if there is none. Under a canary, the same
        `draw_key` always draws the same version (a batch file redelivered, say)."""

    @abstractmethod
    def models(self) -> list[str]:
        """The names of every model the source holds, servable or not, in name order."""

    @abstractmethod
    def versions(self, name: str) -> list[str]:
        """Every servable version of `name`, oldest first; raises ModelNotFound if none."""

    @abstractmethod
    def load(self, ref: ModelRef) -> Runtime:
        """Load the artifact of `ref`; raises ArtifactError if it cannot be loaded."""

    def ready(self) -> bool:
        """Whether the source can be read at all (the server is ready when it can)."""
        return True

    def after_restore(self) -> None:
        """Make fresh what a SnapStart snapshot left stale (cached resolutions, clients, seeds)."""
        return


class DirectorySource(ModelSource):
    """Models laid out as `<root>/<name>/<version>/model.onnx` (or `model.tflite`).

    Without a version, the highest numbered one is served, as Triton's default policy does.
    """

    def __init__(self, root: Path, *, ttl: float = 1.0) -> None:
        self.root = Path(root)
        # Resolving stats the directory tree; within `ttl` seconds a resolution is reused,
        # so a new version or a replaced file is picked up within that delay.
        self.ttl = ttl
        self._resolved: dict[tuple[str, str | None], tuple[ModelRef, float]] = {}

    def resolve(self, name: str, version: str | None = None, *, draw_key: str | None = None) -> ModelRef:
        cached = self._resolved.get((name, version))
        now = time.monotonic()
        if cached is not None and now < cached[1]:
            return cached[0]
        ref = self._resolve(name, version)
        self._resolved[(name, version)] = (ref, now + self.ttl)
        return ref

    def _resolve(self, name: str, version: str | None) -> ModelRef:
        check_name("model name", name)
        if version is None:
            known = self.versions(name)
            version = known[-1]
        check_name("model version", version)
        artifact = self._artifact(name, version)
        if artifact is None:
            raise ModelNotFound(name, version)
        stat = artifact.stat()
        return ModelRef(
            name=name,
            version=version,
            framework=framework_of(artifact),
            cache_key=f"{artifact}:{stat.st_mtime_ns}:{stat.st_size}",
        )

    def models(self) -> list[str]:
        # A directory whose name no model can have is no model (nothing could serve it).
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name for entry in self.root.iterdir() if entry.is_dir() and is_safe_name(entry.name)
        )

    def versions(self, name: str) -> list[str]:
        check_name("model name", name)
        model_dir = self.root / name
        found = (
            [entry.name for entry in model_dir.iterdir() if self._artifact(name, entry.name)]
            if model_dir.is_dir()
            else []
        )
        if not found:
            raise ModelNotFound(name)
        return sorted(found, key=_version_order)

    def load(self, ref: ModelRef) -> Runtime:
        artifact = self._artifact(ref.name, ref.version)
        if artifact is None:
            raise ArtifactError(f"the artifact of model '{ref.name}' version '{ref.version}' has gone")
        return load_runtime(artifact, ref.framework)

    def ready(self) -> bool:
        return self.root.is_dir()

    def after_restore(self) -> None:
        # The cached resolutions' deadlines are on the snapshot's monotonic clock.
        self._resolved.clear()

    def _artifact(self, name: str, version: str) -> Path | None:
        version_dir = self.root / name / version
        for suffix in SUFFIXES:
            candidate = version_dir / f"model{suffix}"
            if candidate.is_file():
                return candidate
        return None


def _version_order(version: str) -> tuple[int, int | str]:
    # Numbered versions sort numerically and after any named ones.
    return (1, int(version)) if is_version_number(version) else (0, version)


__all__ = [
    "DirectorySource",
    "ModelRef",
    "ModelSource",
    "check_name",
    "is_safe_name",
    "is_version_number",
]
