"""Where the data plane finds models: a small interface and the directory source.

The registry issue adds a DynamoDB-backed source with the same interface.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from maas.errors import ArtifactError, ConfigError, InvalidInput, ModelNotFound
from maas.runtimes import SUFFIXES, framework_of, load_runtime

if TYPE_CHECKING:
    from maas.runtimes import Runtime
    from maas.settings import PredictSettings

# Model names and versions are path segments and S3 key parts: no separators, no dot-dot,
# ASCII only (so that case-folding is plain and no two spellings look alike). Matched whole
# with fullmatch: `$` would also match before a trailing newline.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")


@dataclass(frozen=True)
class ModelRef:
    """One concrete, loadable model version. `cache_key` changes whenever the artifact does."""

    name: str
    version: str
    framework: str
    cache_key: str
    target: str = "lambda"


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


def is_version_number(text: str) -> bool:
    """True for ASCII digits only: `str.isdigit` also accepts '²', which `int` refuses."""
    return text.isascii() and text.isdigit()


def is_safe_name(value: str) -> bool:
    """Whether `value` can be a model name or version (a path segment, an S3 key part)."""
    return _SAFE_NAME.fullmatch(value) is not None and ".." not in value


def check_name(kind: str, value: str) -> str:
    """`value` if it is a safe model name or version, else InvalidInput naming the problem."""
    if not is_safe_name(value):
        raise InvalidInput(
            f"{kind} {value!r} is not valid: use ASCII letters, digits, '.', '_' and '-' "
            "(at most 128, no '..')"
        )
    return value


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


def source_from_settings(settings: PredictSettings) -> ModelSource:
    """The model source the settings name; raises ConfigError if they name none."""
    if settings.registry_table is not None:
        if settings.artifact_bucket is None:
            raise ConfigError("MAAS_REGISTRY_TABLE is set but MAAS_ARTIFACT_BUCKET is not")
        from maas.registry import ArtifactStore, DynamoDBStore, Registry, RegistrySource

        registry = Registry(DynamoDBStore(settings.registry_table), ArtifactStore(settings.artifact_bucket))
        return RegistrySource(
            registry,
            default_alias=settings.default_alias,
            ttl=settings.alias_ttl_seconds,
            cache_dir=settings.artifact_cache_dir,
            cache_disk_bytes=settings.cache_disk_bytes(),
            endpoint_prefix=settings.sagemaker_endpoint_prefix,
        )
    if settings.model_dir is not None:
        return DirectorySource(settings.model_dir)
    raise ConfigError(
        "no model source is configured: set MAAS_REGISTRY_TABLE and MAAS_ARTIFACT_BUCKET, or MAAS_MODEL_DIR"
    )
