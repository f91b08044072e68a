"""The reconciler: brings each SageMaker endpoint to what the alias it follows says.

It runs on every alias change (the registry table's stream, in AWS and in `maas dev`) and
on every endpoint state change (SageMaker's EventBridge events, or a periodic sweep where
there are none). Each run reads what is, does the next step and returns; it never waits
for SageMaker. What it did is recorded on the alias as a TargetState: `updating` once an
update is started, `in_service` only once the endpoint is seen serving the alias's config,
`failed` with the reason when a step raised or SageMaker rolled the update back. Runs are
idempotent (configs are named by what they hold; every record write is conditional), so a
retried or duplicated event does no harm.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from maas.control.targets import has_target
from maas.errors import ConflictError, MaasError
from maas.registry.models import TargetPhase, TargetState, utc_now
from maas.runtimes.sagemaker_names import ALIAS_TAG, MODEL_TAG, endpoint_name
from maas.sagemaker.endpoint import EndpointDeployer, EndpointPlan, NoEndpoint, describe_weights

if TYPE_CHECKING:
    from maas.registry.models import Alias
    from maas.registry.service import Registry

logger = logging.getLogger(__name__)

# Endpoint states in which SageMaker takes no new update; the reconciler waits for the next event.
BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
MAX_EVENTS = 20
# Writes of the state record race with other reconcilers; each attempt reads again.
ATTEMPTS = 4
# `_record`'s default: keep the autoscaling saved in the last record.
_KEEP = object()


class ReconcileFailed(MaasError):
    """A reconcile step failed; the alias's target state says why. Raised so that the event
    that triggered it is retried (and, after the retries, kept in the dead-letter queue)."""


class Reconciler:
    """One reconcile step per call, for one alias or one endpoint."""

    def __init__(self, registry: Registry, deployer: EndpointDeployer) -> None:
        self.registry = registry
        self.deployer = deployer
        # Per thread, the state read at the start of a step and then each one it writes: every
        # write is conditional on the one before it.
        self._steps = threading.local()

    @property
    def _last(self) -> TargetState | None:
        return getattr(self._steps, "last", None)

    @_last.setter
    def _last(self, state: TargetState | None) -> None:
        self._steps.last = state

    def reconcile(self, name: str, alias: str, *, retry: bool = False) -> TargetState | None:
        """Take the next step for the target of `alias` of `name`; returns the state recorded,
        None when the alias has no SageMaker target (or the endpoint follows another alias).
        `retry` starts again after SageMaker failed an update of this revision (otherwise
        such a failure stays until the alias changes). Raises ReconcileFailed after
        recording the failure."""
        for _ in range(ATTEMPTS):
            try:
                return self._step(name, alias, retry=retry)
            except ConflictError:
                continue  # another reconciler or an alias change came between; read again
        raise ConflictError(f"the target state of alias '{alias}' of model '{name}' keeps changing")

    def reconcile_endpoint(self, endpoint: str) -> TargetState | None:
        """The step for the alias an endpoint follows (from its tags): what a state-change
        event of that endpoint calls. Endpoints maas does not manage, of another deployment
        (another prefix) or gone meanwhile are left alone."""
        sagemaker = self.deployer.sagemaker
        try:
            arn = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
            tags = {tag["Key"]: tag["Value"] for tag in sagemaker.list_tags(ResourceArn=arn).get("Tags", [])}
        except ClientError as error:
            if "Could not find" in str(error):
                return None  # deleted since the event (or the listing): nothing to move
            raise
        model = tags.get(MODEL_TAG)
        # Another stack's endpoint may share the prefix (`maas-dev-x` under `maas`); its name says.
        if model is None or endpoint_name(self.deployer.prefix, model) != endpoint:
            return None
        return self.reconcile(model, tags.get(ALIAS_TAG, "prod"))

    def sweep(self) -> list[TargetState]:
        """One step for every endpoint of this deployment (its name prefix): where SageMaker's
        state-change events do not arrive, this is how a finished update is observed. One
        endpoint that cannot be reconciled does not stop the others."""
        states = []
        paginator = self.deployer.sagemaker.get_paginator("list_endpoints")
        for page in paginator.paginate(NameContains=self.deployer.prefix):
            for summary in page.get("Endpoints", []):
                if not summary["EndpointName"].startswith(f"{self.deployer.prefix}-"):
                    continue
                try:
                    state = self.reconcile_endpoint(summary["EndpointName"])
                except (MaasError, ClientError) as error:
                    logger.warning("reconciling %s: %s", summary["EndpointName"], _message(error))
                    continue
                if state is not None:
                    states.append(state)
        return states

    # One step

    def _step(self, name: str, alias_name: str, *, retry: bool) -> TargetState | None:
        alias = self.registry.store.get_alias(name, alias_name, include_deleted=True)
        if alias is None or alias.deleted:
            return None
        self._last = self.registry.store.get_target_state(name, alias_name)
        try:
            plan = self.deployer.plan(alias)
        except NoEndpoint as missing:
            return self._record(alias, TargetPhase.PENDING, reason=missing.message)
        except (MaasError, ClientError) as error:
            return self._fail(alias, _message(error))
        if plan is None:
            if has_target(self.registry, alias):  # SageMaker versions, but not this endpoint's alias
                self._record(
                    alias, TargetPhase.PENDING, followed=False, reason="no endpoint follows this alias"
                )
            return None
        try:
            return self._advance(alias, plan, retry=retry)
        except (MaasError, ClientError) as error:
            if isinstance(error, ConflictError):
                raise
            return self._fail(alias, _message(error), endpoint=plan.endpoint, config=plan.config)

    def _current(self, alias: Alias) -> TargetState | None:
        """What was recorded for this very revision of the alias, if anything."""
        last = self._last
        return last if last is not None and last.revision == alias.revision else None

    def _advance(self, alias: Alias, plan: EndpointPlan, *, retry: bool) -> TargetState:
        observed = self._observe(alias, plan)
        if observed is not None:
            return observed
        current = self._current(alias)
        if (
            current is not None
            and current.state is TargetPhase.FAILED
            and not current.retryable
            and not retry
        ):
            return current
        return self._start(alias, plan, retry=retry)

    def _observe(self, alias: Alias, plan: EndpointPlan) -> TargetState | None:
        """The state that what the endpoint shows now makes; None when it is free to update."""
        current = self._current(alias)
        scaling = self._last.scaling if self._last is not None else None
        if plan.done:
            if scaling is not None:
                self.deployer.restore_scaling(plan.endpoint, plan.variants, scaling)
            return self._record(
                alias,
                TargetPhase.IN_SERVICE,
                endpoint=plan.endpoint,
                config=plan.config,
                scaling=None,
                event=f"endpoint {plan.endpoint} serves {plan.config} ({describe_weights(plan.weights)})",
            )
        if plan.status in BUSY:
            waiting = "" if plan.config == plan.current_config else f", then to {plan.config}"
            return self._record(
                alias,
                TargetPhase.UPDATING,
                endpoint=plan.endpoint,
                config=plan.config,
                reason=f"endpoint {plan.endpoint} is {plan.status}{waiting}",
            )
        if plan.status == "Failed" and plan.config == plan.current_config:
            return self._record(
                alias,
                TargetPhase.FAILED,
                endpoint=plan.endpoint,
                config=plan.config,
                retryable=False,
                reason=f"endpoint {plan.endpoint} failed: {plan.failure or 'no reason given'}",
            )
        if current is not None and current.started and current.state is TargetPhase.UPDATING:
            # The update this revision started ended on another config: SageMaker rolled it
            # back. The endpoint serves its old variants again: they get their scaling back.
            if scaling is not None:
                self.deployer.restore_scaling(plan.endpoint, plan.current_variants, scaling)
            return self._record(
                alias,
                TargetPhase.FAILED,
                endpoint=plan.endpoint,
                config=plan.config,
                retryable=False,
                scaling=None,
                reason=f"the update of endpoint {plan.endpoint} to {plan.config} did not finish; SageMaker "
                f"kept {plan.current_config}: {plan.failure or 'no reason given'}",
            )
        return None

    def _start(self, alias: Alias, plan: EndpointPlan, *, retry: bool) -> TargetState:
        """Record `updating` and start the endpoint's update to `plan.config`."""
        saved = self._last.scaling if self._last is not None else None
        # Recorded before anything changes: a crash after this point leaves `updating` with the
        # saved autoscaling, and the next step finds the update or starts it again.
        state = self._record(
            alias,
            TargetPhase.UPDATING,
            endpoint=plan.endpoint,
            config=plan.config,
            scaling=saved or self.deployer.scaling_of(plan),
            event=f"endpoint {plan.endpoint}: updating to {plan.config} ({describe_weights(plan.weights)}, "
            + ("a new endpoint config" if plan.new_config else "re-using endpoint config")
            + "), blue/green",
        )
        try:
            self.deployer.start_update(plan)
        except ClientError as error:
            if "in-progress" not in str(error) and "Cannot update" not in str(error):
                raise
            return state  # another update is under way; its end is the next event
        state = self._record(
            alias, TargetPhase.UPDATING, endpoint=plan.endpoint, config=plan.config, started=True
        )
        after = self.deployer.plan(alias)
        if after is not None and after.done:
            return self._advance(alias, after, retry=retry)
        return state

    # Recording

    def _fail(
        self, alias: Alias, reason: str, *, endpoint: str | None = None, config: str | None = None
    ) -> TargetState:
        self._record(alias, TargetPhase.FAILED, reason=reason, endpoint=endpoint, config=config)
        raise ReconcileFailed(f"alias '{alias.alias}' of model '{alias.name}': {reason}")

    def _record(
        self,
        alias: Alias,
        phase: TargetPhase,
        *,
        reason: str | None = None,
        endpoint: str | None = None,
        config: str | None = None,
        scaling: dict[str, Any] | object | None = _KEEP,
        retryable: bool = True,
        followed: bool = True,
        started: bool | None = None,
        event: str | None = None,
    ) -> TargetState:
        """Write the state of `alias`'s target over the last one read or written in this step.
        The saved autoscaling is kept unless `scaling` says otherwise (None once put back)."""
        recorded = self._last
        current = self._current(alias)
        events = list(current.events) if current is not None else []
        line = event or f"{phase.value}" + (f": {reason}" if reason else "")
        if not events or events[-1] != line:
            events = [*events, line][-MAX_EVENTS:]
        kept = recorded.scaling if recorded is not None else None
        state = TargetState(
            name=alias.name,
            alias=alias.alias,
            revision=alias.revision,
            state=phase,
            reason=reason,
            endpoint=endpoint,
            config=config,
            retryable=retryable,
            followed=followed,
            started=(current.started if current is not None and phase is TargetPhase.UPDATING else False)
            if started is None
            else started,
            events=events,
            scaling=kept if scaling is _KEEP else scaling,
            sequence=(recorded.sequence if recorded is not None else 0) + 1,
            updated_at=utc_now(),
        )
        if current is not None and _unchanged(current, state):
            return current  # nothing new: no write, so a sweep costs reads only
        self.registry.store.put_target_state(state)
        self._last = state
        logger.info("alias '%s' of model '%s' r%d: %s", alias.alias, alias.name, alias.revision, line)
        return state


def _unchanged(before: TargetState, after: TargetState) -> bool:
    keys = ("state", "reason", "endpoint", "config", "retryable", "followed", "started", "events", "scaling")
    return all(getattr(before, key) == getattr(after, key) for key in keys)


def _message(error: Exception) -> str:
    return error.message if isinstance(error, MaasError) else str(error)
