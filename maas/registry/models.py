"""What the registry records: versions, aliases and the history of every alias change."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from maas.protocol.datatypes import Datatype


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Target(StrEnum):
    LAMBDA = "lambda"
    SAGEMAKER = "sagemaker"


class VersionStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


class TensorRecord(BaseModel):
    name: str
    datatype: Datatype
    shape: list[int]


class SignatureRecord(BaseModel):
    inputs: list[TensorRecord]
    outputs: list[TensorRecord]


class ModelVersion(BaseModel):
    """One immutable version of a model; only `status` changes, when it is retired."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    name: str
    version: int
    framework: str
    artifact_key: str
    sha256: str
    size: int
    signature: SignatureRecord
    target: Target = Target.LAMBDA
    quantization: str | None = None
    # JSON has no NaN or infinity: a non-finite metric would be stored as null and never read back.
    metrics: dict[str, FiniteFloat] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    source_commit: str | None = None
    created_by: str
    created_at: str = Field(default_factory=utc_now)
    status: VersionStatus = VersionStatus.ACTIVE
    # Who last changed `status` (retired the version), and when; None while it never changed.
    status_changed_by: str | None = None
    status_changed_at: str | None = None

    def with_status(self, status: VersionStatus, by: str) -> ModelVersion:
        return self.model_copy(
            update={"status": status, "status_changed_by": by, "status_changed_at": utc_now()}
        )


class Alias(BaseModel):
    """A name for what to serve: one version (weight 100) or weighted versions for a canary.

    `revision` counts the writes to this alias; every write is conditional on it. A deleted
    alias points at nothing (`weights` empty) and keeps its revision, so that a new alias of
    the same name counts on and its history stays whole.
    """

    model_config = ConfigDict(protected_namespaces=())

    name: str
    alias: str
    weights: dict[int, int]
    revision: int
    updated_at: str = Field(default_factory=utc_now)
    updated_by: str = ""

    @property
    def versions(self) -> list[int]:
        return sorted(self.weights)

    @property
    def deleted(self) -> bool:
        return not self.weights


class AliasChange(BaseModel):
    """One entry of an alias's history: what it pointed at before and after, and who did it."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    alias: str
    revision: int
    action: str
    weights: dict[int, int]
    previous: dict[int, int] | None
    at: str = Field(default_factory=utc_now)
    by: str = ""


class Page(BaseModel):
    """A page of results and the token for the next one (None on the last page).

    `unreadable` names the records of the page that could not be read (`version 3`), which
    are left out of `items` rather than failing the whole read.
    """

    items: list[Any]
    next_token: str | None = None
    unreadable: list[str] = Field(default_factory=list)


class TargetPhase(StrEnum):
    """Where the serving target of an alias stands (a SageMaker endpoint following it)."""

    PENDING = "pending"  # the alias changed; the reconciler has not acted on this revision yet
    UPDATING = "updating"  # an endpoint update to this revision's config is under way
    IN_SERVICE = "in_service"  # the endpoint serves what this revision says
    FAILED = "failed"  # see `reason`


class TargetState(BaseModel):
    """What the reconciler last recorded for one alias's target, and for which alias revision.

    `sequence` counts the writes of this record; every write is conditional on it, so two
    reconcilers at once cannot put back an older state. `scaling` keeps the autoscaling the
    endpoint had while an update moves it to new variants, to be put back when it is done.
    """

    model_config = ConfigDict(protected_namespaces=())

    name: str
    alias: str
    revision: int
    state: TargetPhase
    reason: str | None = None
    endpoint: str | None = None
    config: str | None = None
    # False once SageMaker itself has failed this revision's update: only an explicit retry
    # (`maas models endpoint --sync`) or a new alias change starts another one.
    retryable: bool = True
    # False when the model's endpoint follows another alias: this one has no target to move.
    followed: bool = True
    # Whether this revision's UpdateEndpoint was accepted (so that a later rollback is its own).
    started: bool = False
    events: list[str] = Field(default_factory=list)
    # Kept on every write, whatever the revision, until it is put back on the endpoint.
    scaling: dict[str, Any] | None = None
    sequence: int = 0
    updated_at: str = Field(default_factory=utc_now)
