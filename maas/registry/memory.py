"""The registry store in memory: the same contract as DynamoDB, for tests and quick experiments."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from maas.errors import ConflictError, InvalidInput
from maas.registry.models import Alias, AliasChange, ModelVersion, Page, TargetState, VersionStatus, utc_now
from maas.registry.store import (
    ModelHead,
    RegistryStore,
    alias_name_taken,
    decode_token,
    encode_token,
    name_taken,
)

if TYPE_CHECKING:
    from collections.abc import Callable


def _page(items: list, limit: int, token: str | None, listing: str) -> Page:
    start = decode_token(listing, token) if token else 0
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise InvalidInput("the page token is not one this registry issued for this listing")
    end = start + limit
    return Page(items=items[start:end], next_token=encode_token(listing, end) if end < len(items) else None)


class InMemoryStore(RegistryStore):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heads: dict[str, ModelHead] = {}
        self._deleted: set[str] = set()  # models whose head is kept only for its counter
        self._names: dict[str, str] = {}  # case-folded model name -> the name
        self._versions: dict[tuple[str, int], ModelVersion] = {}
        self._aliases: dict[tuple[str, str], Alias] = {}
        self._alias_names: dict[tuple[str, str], str] = {}  # (model, case-folded alias) -> the alias
        self._history: dict[tuple[str, str], list[AliasChange]] = {}
        self._targets: dict[tuple[str, str], TargetState] = {}

    def add_version(self, name: str, build: Callable[[int], ModelVersion]) -> ModelVersion:
        with self._lock:
            owner = self._names.get(name.lower(), name)
            if owner != name:
                raise name_taken(name, owner)
            head = self._heads.get(name)
            # Registered again after a deletion, a model starts a new life: created now.
            created_at = utc_now() if head is None or name in self._deleted else head.created_at
            version = build((head.latest_version if head else 0) + 1)
            self._versions[(name, version.version)] = version
            self._heads[name] = ModelHead(name, version.version, head.alias_epoch if head else 0, created_at)
            self._deleted.discard(name)
            self._names[name.lower()] = name
            return version

    def owner_of(self, name: str) -> str | None:
        return self._names.get(name.lower())

    def head(self, name: str) -> ModelHead | None:
        return None if name in self._deleted else self._heads.get(name)

    def get_version(self, name: str, version: int) -> ModelVersion | None:
        return self._versions.get((name, version))

    def list_versions(self, name: str, limit: int, token: str | None) -> Page:
        with self._lock:
            found = sorted((v for (n, _), v in self._versions.items() if n == name), key=lambda v: v.version)
        return _page(found, limit, token, f"versions/{name}")

    def list_models(self, limit: int, token: str | None) -> Page:
        with self._lock:
            heads = sorted(
                (h for h in self._heads.values() if h.name not in self._deleted), key=lambda head: head.name
            )
        return _page(heads, limit, token, "models")

    def get_alias(self, name: str, alias: str, *, include_deleted: bool = False) -> Alias | None:
        found = self._aliases.get((name, alias))
        return found if found is not None and (include_deleted or not found.deleted) else None

    def list_aliases(self, name: str) -> list[Alias]:
        with self._lock:
            return sorted(
                (a for (n, _), a in self._aliases.items() if n == name and not a.deleted),
                key=lambda a: a.alias,
            )

    def write_alias(self, new: Alias, change: AliasChange) -> None:
        with self._lock:
            current = self._aliases.get((new.name, new.alias))
            if (current.revision if current else 0) != new.revision - 1:
                raise ConflictError(
                    f"alias '{new.alias}' of model '{new.name}' changed since it was read; read it again"
                )
            if self.head(new.name) is None:
                raise ConflictError(f"model '{new.name}' was deleted meanwhile")
            claim = (new.name, new.alias.lower())
            owner = self._alias_names.get(claim, new.alias)
            if owner != new.alias:
                raise alias_name_taken(new, owner)
            for version in new.weights:
                record = self._versions.get((new.name, version))
                if record is None or record.status is not VersionStatus.ACTIVE:
                    raise ConflictError(f"version {version} of model '{new.name}' is not active")
            if new.deleted:
                self._alias_names.pop(claim, None)
            else:
                self._alias_names[claim] = new.alias
            self._aliases[(new.name, new.alias)] = new
            self._history.setdefault((new.name, new.alias), []).append(change)
            head = self._heads[new.name]
            self._heads[new.name] = ModelHead(
                head.name, head.latest_version, head.alias_epoch + 1, head.created_at
            )

    def alias_history(self, name: str, alias: str, limit: int, token: str | None) -> Page:
        with self._lock:
            changes = list(reversed(self._history.get((name, alias), [])))
        return _page(changes, limit, token, f"history/{name}/{alias}")

    def set_status(self, name: str, version: int, status: VersionStatus, alias_epoch: int, by: str) -> None:
        with self._lock:
            self._check_epoch(name, alias_epoch)
            record = self._versions[(name, version)]
            self._versions[(name, version)] = record.with_status(status, by)

    def delete_model(self, name: str, alias_epoch: int, by: str) -> None:
        with self._lock:
            self._check_epoch(name, alias_epoch)
            self._deleted.add(name)
            self._versions = {key: v for key, v in self._versions.items() if key[0] != name}
            self._aliases = {key: a for key, a in self._aliases.items() if key[0] != name}
            self._alias_names = {key: a for key, a in self._alias_names.items() if key[0] != name}
            self._history = {key: h for key, h in self._history.items() if key[0] != name}
            self._targets = {key: t for key, t in self._targets.items() if key[0] != name}

    def get_target_state(self, name: str, alias: str) -> TargetState | None:
        return self._targets.get((name, alias))

    def put_target_state(self, state: TargetState) -> None:
        with self._lock:
            current = self._targets.get((state.name, state.alias))
            alias = self._aliases.get((state.name, state.alias))
            if (current.sequence if current else 0) != state.sequence - 1:
                raise ConflictError(f"the target state of alias '{state.alias}' changed meanwhile")
            if alias is None or alias.revision != state.revision:
                raise ConflictError(f"alias '{state.alias}' of model '{state.name}' moved on meanwhile")
            self._targets[(state.name, state.alias)] = state

    def _check_epoch(self, name: str, alias_epoch: int) -> None:
        head = self.head(name)
        if head is None or head.alias_epoch != alias_epoch:
            raise ConflictError(f"the aliases of model '{name}' changed meanwhile; try again")


__all__ = ["InMemoryStore"]
