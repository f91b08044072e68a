"""The registry store in memory: the same contract as DynamoDB, for tests and quick experiments."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from maas.errors import ConflictError
from maas.registry.models import Alias, AliasChange, ModelVersion, Page, VersionStatus, utc_now
from maas.registry.store import ModelHead, RegistryStore

if TYPE_CHECKING:
    from collections.abc import Callable


def _page(items: list, limit: int, token: str | None) -> Page:
    start = int(token or 0)
    end = start + limit
    return Page(items=items[start:end], next_token=str(end) if end < len(items) else None)


class InMemoryStore(RegistryStore):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heads: dict[str, ModelHead] = {}
        self._versions: dict[tuple[str, int], ModelVersion] = {}
        self._aliases: dict[tuple[str, str], Alias] = {}
        self._history: dict[tuple[str, str], list[AliasChange]] = {}

    def add_version(self, name: str, build: Callable[[int], ModelVersion]) -> ModelVersion:
        with self._lock:
            head = self._heads.get(name) or ModelHead(name, 0, 0, utc_now())
            version = build(head.latest_version + 1)
            self._versions[(name, version.version)] = version
            self._heads[name] = ModelHead(name, version.version, head.alias_epoch, head.created_at)
            return version

    def head(self, name: str) -> ModelHead | None:
        return self._heads.get(name)

    def get_version(self, name: str, version: int) -> ModelVersion | None:
        return self._versions.get((name, version))

    def list_versions(self, name: str, limit: int, token: str | None) -> Page:
        with self._lock:
            found = sorted((v for (n, _), v in self._versions.items() if n == name), key=lambda v: v.version)
        return _page(found, limit, token)

    def list_models(self, limit: int, token: str | None) -> Page:
        with self._lock:
            heads = sorted(self._heads.values(), key=lambda head: head.name)
        return _page(heads, limit, token)

    def get_alias(self, name: str, alias: str) -> Alias | None:
        return self._aliases.get((name, alias))

    def list_aliases(self, name: str) -> list[Alias]:
        with self._lock:
            return sorted((a for (n, _), a in self._aliases.items() if n == name), key=lambda a: a.alias)

    def write_alias(self, new: Alias, change: AliasChange) -> None:
        with self._lock:
            current = self._aliases.get((new.name, new.alias))
            if (current.revision if current else 0) != new.revision - 1:
                raise ConflictError(
                    f"alias '{new.alias}' of model '{new.name}' changed since it was read; read it again"
                )
            for version in new.weights:
                record = self._versions.get((new.name, version))
                if record is None or record.status is not VersionStatus.ACTIVE:
                    raise ConflictError(f"version {version} of model '{new.name}' is not active")
            self._aliases[(new.name, new.alias)] = new
            self._history.setdefault((new.name, new.alias), []).append(change)
            head = self._heads[new.name]
            self._heads[new.name] = ModelHead(
                head.name, head.latest_version, head.alias_epoch + 1, head.created_at
            )

    def alias_history(self, name: str, alias: str, limit: int, token: str | None) -> Page:
        with self._lock:
            changes = list(reversed(self._history.get((name, alias), [])))
        return _page(changes, limit, token)

    def set_status(self, name: str, version: int, status: VersionStatus, alias_epoch: int) -> None:
        with self._lock:
            self._check_epoch(name, alias_epoch)
            record = self._versions[(name, version)]
            self._versions[(name, version)] = record.model_copy(update={"status": status})

    def delete_model(self, name: str, alias_epoch: int) -> None:
        with self._lock:
            self._check_epoch(name, alias_epoch)
            self._heads.pop(name, None)
            self._versions = {key: v for key, v in self._versions.items() if key[0] != name}
            self._history = {key: h for key, h in self._history.items() if key[0] != name}

    def _check_epoch(self, name: str, alias_epoch: int) -> None:
        head = self._heads.get(name)
        if head is None or head.alias_epoch != alias_epoch:
            raise ConflictError(f"the aliases of model '{name}' changed meanwhile; try again")
