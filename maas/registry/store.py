"""The registry's storage contract: one abstract store, an in-memory and a DynamoDB backend.

Every method that writes is atomic and conditional, so the rules of the registry
(gapless version numbers, no lost alias update, no retiring a served version) hold
however many writers race. A lost race raises ConflictError.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from maas.registry.models import Alias, AliasChange, ModelVersion, Page, VersionStatus


@dataclass(frozen=True)
class ModelHead:
    """The per-model record: the latest version number and a counter of alias writes."""

    name: str
    latest_version: int
    alias_epoch: int
    created_at: str


class RegistryStore(ABC):
    @abstractmethod
    def add_version(self, name: str, build: Callable[[int], ModelVersion]) -> ModelVersion:
        """Write `build(n)` as version n = latest + 1, atomically with the counter."""

    @abstractmethod
    def head(self, name: str) -> ModelHead | None:
        """The model's record, or None if it has never been registered."""

    @abstractmethod
    def get_version(self, name: str, version: int) -> ModelVersion | None: ...

    @abstractmethod
    def list_versions(self, name: str, limit: int, token: str | None) -> Page:
        """Versions oldest first."""

    @abstractmethod
    def list_models(self, limit: int, token: str | None) -> Page:
        """ModelHeads by name."""

    @abstractmethod
    def get_alias(self, name: str, alias: str) -> Alias | None: ...

    @abstractmethod
    def list_aliases(self, name: str) -> list[Alias]: ...

    @abstractmethod
    def write_alias(self, new: Alias, change: AliasChange) -> None:
        """Store `new` if the alias is still at revision `new.revision - 1` (absent when 0) and
        every version it points at is active; record `change` in its history; bump the
        model's alias epoch. Raises ConflictError otherwise."""

    @abstractmethod
    def alias_history(self, name: str, alias: str, limit: int, token: str | None) -> Page:
        """AliasChanges newest first."""

    @abstractmethod
    def set_status(self, name: str, version: int, status: VersionStatus, alias_epoch: int) -> None:
        """Change a version's status if no alias has been written since `alias_epoch` was read."""

    @abstractmethod
    def delete_model(self, name: str, alias_epoch: int) -> None:
        """Remove every record of the model if no alias has been written since `alias_epoch`."""


__all__ = ["ModelHead", "RegistryStore"]
