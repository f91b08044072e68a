"""The control plane: every model change, and the follow-up each one needs.

The CLI, the registry HTTP API and `maas release` are adapters over `ControlPlane`; none
of them writes to the registry or calls a deployer itself. What follows a change:

- registering a version for SageMaker packs it for Triton, whoever registers it;
- an alias change of a SageMaker model moves its endpoint. That step is the reconciler's
  (maas.control.reconciler), run by the registry table's stream in AWS and in `maas dev`;
  the control plane records nothing for it, because the alias's new revision is itself
  the request: its target reads `pending` until the reconciler records otherwise.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from maas.control.targets import target_of
from maas.errors import ArtifactError, InvalidInput
from maas.registry.models import Target, TargetPhase
from maas.sagemaker.triton import TritonOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from maas.registry.models import Alias, AliasChange, ModelVersion, TargetState
    from maas.registry.service import Registry

SETTLED = {TargetPhase.IN_SERVICE, TargetPhase.FAILED}


class ControlPlane:
    """Model changes over a registry, recorded as made by the registry's user."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def acting_as(self, user: str) -> ControlPlane:
        """This control plane, recording its changes as made by `user` (an API request's caller)."""
        return ControlPlane(self.registry.acting_as(user))

    # Versions

    def register(
        self,
        name: str,
        artifact: Path,
        *,
        target: Target | str = Target.LAMBDA,
        triton: TritonOptions | None = None,
        quantization: str | None = None,
        metrics: dict[str, float] | None = None,
        labels: dict[str, str] | None = None,
        source_commit: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ModelVersion:
        """Register `artifact` as the next version of `name` (see Registry.register, which
        checks its signature). A SageMaker version is packed for Triton with `triton` first,
        from the file itself, so that options or a graph Triton cannot take register nothing;
        `triton` for a Lambda version is refused (it would be ignored)."""

        def record(prepare: Callable[[ModelVersion], object] | None = None) -> ModelVersion:
            return self.registry.register(
                name,
                artifact,
                target=target,
                quantization=quantization,
                metrics=metrics,
                labels=labels,
                source_commit=source_commit,
                progress=progress,
                prepare=prepare,
            )

        if str(target) != Target.SAGEMAKER.value:  # a bad target is the registry's to refuse
            if triton is not None:
                raise InvalidInput("Triton options apply to versions registered with target sagemaker only")
            return record()
        from maas.sagemaker.package import write_package

        with tempfile.TemporaryDirectory(prefix="maas-package-") as scratch:
            tarball = Path(scratch) / "model.tar.gz"
            # Packed from the draft (its signature read once, by the registry's probe) before
            # anything is stored.
            version = record(lambda draft: write_package(tarball, draft, artifact, triton or TritonOptions()))
            self._upload_package(version, tarball)
        return version

    def _upload_package(self, version: ModelVersion, tarball: Path) -> None:
        from maas.sagemaker.package import package_key

        artifacts = self.registry.artifacts
        key = package_key(version.name, version.version)
        try:
            artifacts.client.upload_file(str(tarball), artifacts.bucket, key)
        except Exception as error:  # S3 refused: the version is recorded, its package is not
            raise ArtifactError(
                f"version {version.version} of model '{version.name}' is registered, but its Triton package "
                f"could not be stored ({error}); run `maas models package {version.name} {version.version}`"
            ) from None

    def package(self, version: ModelVersion, triton: TritonOptions | None = None) -> str:
        """(Re)build the Triton package of a SageMaker version; returns its S3 key."""
        from maas.sagemaker.package import package_version

        return package_version(self.registry, version, triton)

    def retire(self, name: str, version: int) -> ModelVersion:
        return self.registry.retire(name, version)

    def delete(self, name: str) -> None:
        self.registry.delete(name)

    # Aliases

    def promote(self, name: str, alias: str, version: int, *, expected_revision: int | None = None) -> Alias:
        return self.registry.promote(name, alias, version, expected_revision=expected_revision)

    def canary(
        self, name: str, alias: str, weights: dict[int, int], *, expected_revision: int | None = None
    ) -> Alias:
        return self.registry.canary(name, alias, weights, expected_revision=expected_revision)

    def rollback(self, name: str, alias: str, *, expected_revision: int | None = None) -> Alias:
        return self.registry.rollback(name, alias, expected_revision=expected_revision)

    def delete_alias(self, name: str, alias: str, *, expected_revision: int | None = None) -> AliasChange:
        return self.registry.delete_alias(name, alias, expected_revision=expected_revision)

    # Targets

    def target(self, name: str, alias: str) -> TargetState | None:
        """Where the serving target of `alias` stands; None when it has none to move (no
        version of it targets SageMaker)."""
        return target_of(self.registry, self.registry.alias(name, alias))

    def wait_for_target(
        self,
        name: str,
        alias: str,
        *,
        timeout: float,
        on_event: Callable[[str], None] = lambda line: None,
        poll_seconds: float = 0.25,
    ) -> TargetState | None:
        """Wait until the target of `alias` is `in_service` or `failed` for the alias's revision
        of now, or `timeout` seconds pass; calls `on_event` with each step the reconciler
        records. Returns the last state seen (None when the alias has no target to move). If
        the alias changes again meanwhile, the wait ends with that newer revision's state."""
        deadline = time.monotonic() + timeout
        watched: int | None = None
        last: str | None = None
        while True:
            state = self.target(name, alias)
            if state is None:
                return None
            watched = state.revision if watched is None else watched
            if state.revision != watched:
                on_event(f"alias {alias} changed again (revision {state.revision}) while waiting")
                return state
            for line in _after(state.events, last):
                on_event(line)
                last = line
            if state.state in SETTLED or time.monotonic() >= deadline:
                return state
            time.sleep(poll_seconds)


def _after(events: list[str], last: str | None) -> list[str]:
    """The events recorded after `last` (all of them when it is none or has rolled off)."""
    if last is None or last not in events:
        return list(events)
    return events[len(events) - events[::-1].index(last) :]
