"""The registry's storage contract: one abstract store, an in-memory and a DynamoDB backend.

Every method that writes is atomic and conditional, so the rules of the registry
(version numbers never reused, no lost alias update, no retiring a served version, names
unique regardless of case) hold however many writers race. A lost race raises ConflictError.
"""

from __future__ import annotations

import base64
import binascii
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from maas.errors import ConflictError, InvalidInput, MaasError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic import ValidationError

    from maas.registry.models import Alias, AliasChange, ModelVersion, Page, TargetState, VersionStatus

# One alias write is one DynamoDB transaction of at most 100 items: the alias, its history
# entry, its case-folded name and the model's epoch, plus one check per version it points at.
MAX_ALIAS_VERSIONS = 96
# A version is one DynamoDB item of at most 400 KB; its JSON must leave room for the keys.
MAX_RECORD_BYTES = 350 * 1024


@dataclass(frozen=True)
class ModelHead:
    """The per-model record: the latest version number and a counter of alias writes."""

    name: str
    latest_version: int
    alias_epoch: int
    created_at: str


class UnreadableRecord(MaasError):
    """A stored record that no longer parses (an old bug or a hand edit). Only reads of that
    record fail with it; listings leave it out and name it in `Page.unreadable`."""

    status = 500

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{what} cannot be read: {problem}; repair or delete the stored item")
        self.what = what

    @classmethod
    def invalid(cls, what: str, error: ValidationError) -> UnreadableRecord:
        problems = [
            f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
            if detail["loc"]
            else detail["msg"]
            for detail in error.errors(include_url=False, include_input=False)[:3]
        ]
        return cls(what, "; ".join(problems))


def encode_token(listing: str, position: Any) -> str:
    """A page token: where the next page of `listing` starts."""
    return base64.urlsafe_b64encode(json.dumps({"for": listing, "after": position}).encode()).decode()


def decode_token(listing: str, token: str) -> Any:
    """The position in a token `encode_token(listing, ...)` made; InvalidInput for any other."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error):  # not ASCII, not base64, not UTF-8, not JSON
        decoded = None
    if not isinstance(decoded, dict) or decoded.get("for") != listing or "after" not in decoded:
        raise InvalidInput("the page token is not one this registry issued for this listing")
    return decoded["after"]


def name_taken(name: str, owner: str) -> ConflictError:
    return ConflictError(
        f"model name '{name}' is taken by model '{owner}'; names are unique regardless of case"
    )


def alias_name_taken(new: Alias, owner: str) -> ConflictError:
    return ConflictError(
        f"alias name '{new.alias}' of model '{new.name}' is taken by alias '{owner}'; "
        "alias names are unique regardless of case"
    )


class RegistryStore(ABC):
    @abstractmethod
    def add_version(self, name: str, build: Callable[[int], ModelVersion]) -> ModelVersion:
        """Write `build(n)` as version n = latest + 1, atomically with the counter. The counter
        outlives a deletion of the model, so no number is given twice. Raises ConflictError if
        `name` differs only in case from another model's name."""

    @abstractmethod
    def owner_of(self, name: str) -> str | None:
        """The name registered (now or before a deletion) that equals `name` regardless of case."""

    @abstractmethod
    def head(self, name: str) -> ModelHead | None:
        """The model's record, or None if it was never registered or has been deleted."""

    @abstractmethod
    def get_version(self, name: str, version: int) -> ModelVersion | None:
        """The version, None if there is none; raises UnreadableRecord if it does not parse."""

    @abstractmethod
    def list_versions(self, name: str, limit: int, token: str | None) -> Page:
        """Versions oldest first."""

    @abstractmethod
    def list_models(self, limit: int, token: str | None) -> Page:
        """ModelHeads by name."""

    @abstractmethod
    def get_alias(self, name: str, alias: str, *, include_deleted: bool = False) -> Alias | None:
        """The alias; a deleted one (no weights, its last revision) only with `include_deleted`."""

    @abstractmethod
    def list_aliases(self, name: str) -> list[Alias]:
        """The aliases that point at something, by name; unreadable ones are left out (and logged)."""

    @abstractmethod
    def write_alias(self, new: Alias, change: AliasChange) -> None:
        """Store `new` (no weights: the alias is deleted) if the alias is still at revision
        `new.revision - 1` (absent when 0), no other alias of the model has its name in another
        case, and every version it points at is active; record `change` in its history; bump
        the model's alias epoch. Raises ConflictError otherwise."""

    @abstractmethod
    def alias_history(self, name: str, alias: str, limit: int, token: str | None) -> Page:
        """AliasChanges newest first."""

    @abstractmethod
    def set_status(self, name: str, version: int, status: VersionStatus, alias_epoch: int, by: str) -> None:
        """Change a version's status, recording that `by` did, if no alias has been written since
        `alias_epoch` was read."""

    @abstractmethod
    def delete_model(self, name: str, alias_epoch: int, by: str) -> None:
        """Remove the model's versions, aliases and history if no alias has been written since
        `alias_epoch`; its version counter and its name stay, with who (`by`) deleted it."""

    @abstractmethod
    def get_target_state(self, name: str, alias: str) -> TargetState | None:
        """What the reconciler last recorded for the target of `alias`, None if nothing yet."""

    @abstractmethod
    def put_target_state(self, state: TargetState) -> None:
        """Store `state` as write `state.sequence` of its record (the first is 1) if the record
        is still at `state.sequence - 1` and the alias is still at `state.revision`; raises
        ConflictError otherwise (another reconciler wrote first, or the alias moved on)."""


__all__ = [
    "MAX_ALIAS_VERSIONS",
    "MAX_RECORD_BYTES",
    "ModelHead",
    "RegistryStore",
    "UnreadableRecord",
    "alias_name_taken",
    "decode_token",
    "encode_token",
    "name_taken",
]
