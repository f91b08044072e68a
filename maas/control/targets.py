"""The target state of an alias as callers see it: what the reconciler recorded for the
alias's current revision, or `pending` while it has recorded nothing for that revision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maas.registry.models import Target, TargetPhase, TargetState

if TYPE_CHECKING:
    from maas.registry.models import Alias
    from maas.registry.service import Registry

WAITING = "waiting for the reconciler to act on this alias change"


def has_target(registry: Registry, alias: Alias) -> bool:
    """Whether a version of `alias` runs on SageMaker, so that an endpoint follows it."""
    return any(registry.get(alias.name, version).target is Target.SAGEMAKER for version in alias.weights)


def target_of(registry: Registry, alias: Alias) -> TargetState | None:
    """The state of `alias`'s target; None when no version of it targets SageMaker."""
    if alias.deleted or not has_target(registry, alias):
        return None
    recorded = registry.store.get_target_state(alias.name, alias.alias)
    if recorded is not None and recorded.revision == alias.revision:
        return recorded if recorded.followed else None
    return TargetState(
        name=alias.name,
        alias=alias.alias,
        revision=alias.revision,
        state=TargetPhase.PENDING,
        reason=WAITING,
        endpoint=recorded.endpoint if recorded else None,
        sequence=recorded.sequence if recorded else 0,
    )
