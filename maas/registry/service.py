"""The registry's rules, over any store: register, aliases, canary, rollback, retire, delete."""

from __future__ import annotations

import getpass
import math
import os
from typing import TYPE_CHECKING

from maas.errors import ArtifactError, ConflictError, InvalidInput, MaasError, ModelNotFound
from maas.names import check_name, is_version_number
from maas.registry.models import (
    Alias,
    AliasChange,
    ModelVersion,
    Page,
    SignatureRecord,
    Target,
    TensorRecord,
    VersionStatus,
)
from maas.registry.store import MAX_ALIAS_VERSIONS, MAX_RECORD_BYTES, name_taken
from maas.runtimes import Signature, TensorSpec, framework_of
from maas.runtimes.probe import signature_in_child

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from maas.registry.artifacts import ArtifactStore
    from maas.registry.store import ModelHead, RegistryStore

MAX_PAGE = 100


def current_user() -> str:
    """Who a registry used in-process acts as when no identity is given: `MAAS_USER`, else the
    operating system's user (tests and embedded tools; the API and the CLI name the caller)."""
    return os.environ.get("MAAS_USER") or getpass.getuser()


def signature_record(signature: Signature) -> SignatureRecord:
    def tensors(specs: tuple[TensorSpec, ...]) -> list[TensorRecord]:
        return [TensorRecord(name=s.name, datatype=s.datatype, shape=list(s.shape)) for s in specs]

    return SignatureRecord(inputs=tensors(signature.inputs), outputs=tensors(signature.outputs))


def runtime_signature(record: SignatureRecord) -> Signature:
    """The runtime view of a recorded signature."""

    def specs(tensors: list[TensorRecord]) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(name=t.name, datatype=t.datatype, shape=tuple(t.shape)) for t in tensors)

    return Signature(inputs=specs(record.inputs), outputs=specs(record.outputs))


class Registry:
    """Model versions and aliases. Every change is conditional on what was read; a lost race
    raises ConflictError and changes nothing."""

    def __init__(
        self,
        store: RegistryStore,
        artifacts: ArtifactStore,
        *,
        user: str | None = None,
        identify: Callable[[], str] | None = None,
    ) -> None:
        """`user` is who every change is recorded as made by; `identify` finds it on the first
        change instead (the CLI asks STS, which reads need not wait for)."""
        self.store = store
        self.artifacts = artifacts
        self._user = user
        self._identify = identify

    @property
    def user(self) -> str:
        if self._user is None:
            self._user = self._identify() if self._identify is not None else current_user()
        return self._user

    def acting_as(self, user: str) -> Registry:
        """This registry, recording its changes as made by `user` (an API request's caller)."""
        return Registry(self.store, self.artifacts, user=user)

    # Versions

    def register(
        self,
        name: str,
        artifact: Path,
        *,
        target: Target | str = Target.LAMBDA,
        quantization: str | None = None,
        metrics: dict[str, float] | None = None,
        labels: dict[str, str] | None = None,
        source_commit: str | None = None,
        progress: Callable[[int], None] | None = None,
        prepare: Callable[[ModelVersion], object] | None = None,
    ) -> ModelVersion:
        """Store the artifact once and record it as the next version of `name`. `prepare` is
        called with the draft record (signature read, no number yet) before anything is stored;
        what it raises stops the registration.

        Raises InvalidInput if the name, a metric or the record's size is not valid or the file
        does not load with its runtime, and ConflictError if the name is another model's in
        another case. Nothing is uploaded unless the version can be recorded.
        """
        check_name("model name", name)
        try:
            target = Target(target)
        except ValueError:
            raise InvalidInput(
                f"target '{target}' is not one of: {', '.join(t.value for t in Target)}"
            ) from None
        for key, value in (metrics or {}).items():
            if not math.isfinite(value):
                raise InvalidInput(f"metric '{key}' is {value}; metrics must be finite numbers")
        owner = self.store.owner_of(name)
        if owner is not None and owner != name:
            raise name_taken(name, owner)
        try:
            framework = framework_of(artifact)
            # In a child process: the file is untrusted, and a runtime may crash on it.
            signature = signature_in_child(artifact, framework)
        except ArtifactError as error:
            raise InvalidInput(f"cannot register '{artifact.name}': {error.message}") from None
        if target is Target.SAGEMAKER and framework != "onnx":
            raise InvalidInput(
                f"cannot register '{artifact.name}' for target sagemaker: SageMaker endpoints run Triton's "
                "ONNX Runtime backend, so the artifact must be an .onnx file"
            )
        draft = ModelVersion(
            name=name,
            version=0,
            framework=framework,
            artifact_key="",
            sha256="",
            size=0,
            signature=signature_record(signature),
            target=target,
            quantization=quantization,
            metrics=metrics or {},
            labels=labels or {},
            source_commit=source_commit,
            created_by=self.user,
        )
        _check_record_size(draft)
        if prepare is not None:
            prepare(draft)
        key, sha256, size = self.artifacts.put_file(name, artifact, progress)

        def build(number: int) -> ModelVersion:
            return draft.model_copy(
                update={"version": number, "artifact_key": key, "sha256": sha256, "size": size}
            )

        return self.store.add_version(name, build)

    def get(self, name: str, version: int) -> ModelVersion:
        record = self.store.get_version(check_name("model name", name), version)
        if record is None:
            raise ModelNotFound(name, str(version))
        return record

    def versions(self, name: str, limit: int = 50, token: str | None = None) -> Page:
        self._require_model(name)
        return self.store.list_versions(name, _limit(limit), token)

    def models(self, limit: int = 50, token: str | None = None) -> Page:
        return self.store.list_models(_limit(limit), token)

    def retire(self, name: str, version: int) -> ModelVersion:
        """Stop serving `version`; refused while any alias points at it. It stays in history."""
        head = self._require_model(name)
        record = self.get(name, version)
        serving = [a.alias for a in self.store.list_aliases(name) if version in a.weights]
        if serving:
            raise ConflictError(
                f"version {version} of model '{name}' is served by alias(es) {', '.join(serving)}; "
                "point them elsewhere first"
            )
        if record.status is VersionStatus.RETIRED:
            return record
        self.store.set_status(name, version, VersionStatus.RETIRED, head.alias_epoch, self.user)
        return self.get(name, version)

    def delete(self, name: str) -> None:
        """Remove the versions and aliases of `name`; refused while it has aliases (delete them
        first). Its version numbers are not given again, and artifacts stay in S3."""
        head = self._require_model(name)
        aliases = self.store.list_aliases(name)
        if aliases:
            raise ConflictError(
                f"model '{name}' still has alias(es) {', '.join(a.alias for a in aliases)}; it cannot be deleted"
            )
        self.store.delete_model(name, head.alias_epoch, self.user)

    # Aliases

    def alias(self, name: str, alias: str) -> Alias:
        found = self.store.get_alias(check_name("model name", name), check_name("alias", alias))
        if found is None:
            raise ModelNotFound(name, alias=alias)
        return found

    def aliases(self, name: str) -> list[Alias]:
        self._require_model(name)
        return self.store.list_aliases(name)

    def promote(self, name: str, alias: str, version: int, *, expected_revision: int | None = None) -> Alias:
        """Point `alias` at `version` alone."""
        return self._set_alias(name, alias, {version: 100}, "promote", expected_revision)

    def canary(
        self, name: str, alias: str, weights: dict[int, int], *, expected_revision: int | None = None
    ) -> Alias:
        """Split `alias` between versions by integer weights that add up to 100."""
        if len(weights) > MAX_ALIAS_VERSIONS:
            raise InvalidInput(
                f"a canary may split an alias between at most {MAX_ALIAS_VERSIONS} versions, not {len(weights)}"
            )
        if len(weights) < 1 or any(w <= 0 for w in weights.values()) or sum(weights.values()) != 100:
            raise InvalidInput(f"canary weights must be positive and add up to 100, got {weights}")
        return self._set_alias(name, alias, dict(weights), "canary", expected_revision)

    def rollback(self, name: str, alias: str, *, expected_revision: int | None = None) -> Alias:
        """Point `alias` back at what it pointed at before its last change."""
        current = self.alias(name, alias)
        last = self.store.alias_history(name, alias, 1, None).items
        if not last or last[0].previous is None:
            raise ConflictError(f"alias '{alias}' of model '{name}' has no earlier target to roll back to")
        return self._set_alias(
            name,
            alias,
            last[0].previous,
            "rollback",
            expected_revision if expected_revision is not None else current.revision,
        )

    def delete_alias(self, name: str, alias: str, *, expected_revision: int | None = None) -> AliasChange:
        """Make `alias` point at nothing; the deletion is its next revision and history entry.

        Raises ModelNotFound if the alias does not exist, ConflictError if it is not at
        `expected_revision` (when given) or changed meanwhile.
        """
        current = self.alias(name, alias)
        return self._write_alias(
            name, alias, {}, "delete", expected_revision=expected_revision, current=current
        )[1]

    def history(self, name: str, alias: str, limit: int = 50, token: str | None = None) -> Page:
        """Every change of `alias`, newest first, also once the alias is deleted."""
        self._require_model(name)
        if self.store.get_alias(name, check_name("alias", alias), include_deleted=True) is None:
            raise ModelNotFound(name, alias=alias)
        return self.store.alias_history(name, alias, _limit(limit), token)

    def _set_alias(
        self, name: str, alias: str, weights: dict[int, int], action: str, expected_revision: int | None
    ) -> Alias:
        check_name("alias", alias)
        if is_version_number(alias):
            raise InvalidInput(f"alias '{alias}' is not valid: a number names a version")
        self._require_model(name)
        for version in weights:
            record = self.get(name, version)
            if record.status is not VersionStatus.ACTIVE:
                raise ConflictError(f"version {version} of model '{name}' is retired and cannot be served")
        current = self.store.get_alias(name, alias, include_deleted=True)
        return self._write_alias(
            name, alias, weights, action, expected_revision=expected_revision, current=current
        )[0]

    def _write_alias(
        self,
        name: str,
        alias: str,
        weights: dict[int, int],
        action: str,
        *,
        expected_revision: int | None,
        current: Alias | None,
    ) -> tuple[Alias, AliasChange]:
        """Write `weights` as the next revision of `alias` (read as `current`) and its history entry."""
        revision = current.revision if current else 0
        if expected_revision is not None and expected_revision != revision:
            raise ConflictError(
                f"alias '{alias}' of model '{name}' is at revision {revision}, not {expected_revision}; read it again"
            )
        new = Alias(name=name, alias=alias, weights=weights, revision=revision + 1, updated_by=self.user)
        change = AliasChange(
            name=name,
            alias=alias,
            revision=new.revision,
            action=action,
            weights=weights,
            previous=current.weights if current and not current.deleted else None,
            at=new.updated_at,
            by=self.user,
        )
        self.store.write_alias(new, change)
        return new, change

    def exists(self, name: str) -> bool:
        """Whether a model called `name` is registered (False for a name no model can have)."""
        try:
            self._require_model(name)
        except MaasError:
            return False
        return True

    def _require_model(self, name: str) -> ModelHead:
        head = self.store.head(check_name("model name", name))
        if head is None:
            raise ModelNotFound(name)
        return head


def _check_record_size(draft: ModelVersion) -> None:
    size = len(draft.model_dump_json().encode())
    if size > MAX_RECORD_BYTES:
        raise InvalidInput(
            f"the version record would be {size // 1024} KB; labels, metrics and the signature together "
            f"must fit in {MAX_RECORD_BYTES // 1024} KB"
        )


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"page size must be between 1 and {MAX_PAGE}, got {limit}")
    return limit
