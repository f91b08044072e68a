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
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from maas.errors import ConflictError, MaasError
from maas.registry.models import TargetPhase, TargetState, utc_now
from maas.runtimes.sagemaker_names import ALIAS_TAG, MODEL_TAG
from maas.sagemaker.endpoint import EndpointDeployer, EndpointPlan, NoEndpoint

if TYPE_CHECKING:
    from maas.registry.models import Alias
    from maas.registry.service import Registry

logger = logging.getLogger(__name__)

# Endpoint states in which SageMaker takes no new update; the reconciler waits for the next event.
BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
MAX_EVENTS = 20
# Writes of the state record race with other reconcilers; each attempt reads again.
ATTEMPTS = 4


class ReconcileFailed(MaasError):
    """A reconcile step failed; the alias's target state says why. Raised so that the event
    that triggered it is retried (and, after the retries, kept in the dead-letter queue)."""


class Reconciler:
    """One reconcile step per call, for one alias or one endpoint."""

    def __init__(self, registry: Registry, deployer: EndpointDeployer) -> None:
        self.registry = registry
        self.deployer = deployer

    def reconcile(self, name: str, alias: str, *, retry: bool = False) -> TargetState | None:
        """Take the next step for the target of `alias` of `name`; returns the state recorded,
        None when the alias has no SageMaker target. `retry` starts again after SageMaker
        failed an update of this revision (otherwise such a failure stays until the alias
        changes). Raises ReconcileFailed after recording the failure."""
        for _ in range(ATTEMPTS):
            try:
                return self._step(name, alias, retry=retry)
            except ConflictError:
                continue  # another reconciler or an alias change came between; read again
        raise ConflictError(f"the target state of alias '{alias}' of model '{name}' keeps changing")

    def reconcile_endpoint(self, endpoint: str) -> TargetState | None:
        """The step for the alias an endpoint follows (from its tags): what a state-change
        event of that endpoint calls. Endpoints maas does not manage are left alone."""
        arn = self.deployer.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
        tags = {
            tag["Key"]: tag["Value"]
            for tag in self.deployer.sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
        }
        if MODEL_TAG not in tags:
            return None
        return self.reconcile(tags[MODEL_TAG], tags.get(ALIAS_TAG, "prod"))

    def sweep(self) -> list[TargetState]:
        """One step for every endpoint of this deployment (its name prefix): where SageMaker's
        state-change events do not arrive, this is how a finished update is observed."""
        states = []
        paginator = self.deployer.sagemaker.get_paginator("list_endpoints")
        for page in paginator.paginate(NameContains=self.deployer.prefix):
            for summary in page.get("Endpoints", []):
                if not summary["EndpointName"].startswith(f"{self.deployer.prefix}-"):
                    continue
                try:
                    state = self.reconcile_endpoint(summary["EndpointName"])
                except MaasError as error:
                    logger.warning("reconciling %s: %s", summary["EndpointName"], error.message)
                    continue
                if state is not None:
                    states.append(state)
        return states

    # One step

    def _step(self, name: str, alias_name: str, *, retry: bool) -> TargetState | None:
        alias = self.registry.store.get_alias(name, alias_name, include_deleted=True)
        if alias is None or alias.deleted:
            return None
        recorded = self.registry.store.get_target_state(name, alias_name)
        try:
            plan = self.deployer.plan(alias)
        except NoEndpoint as missing:
            return self._record(alias, recorded, TargetPhase.PENDING, reason=missing.message)
        except (MaasError, ClientError) as error:
            return self._fail(alias, recorded, _message(error))
        if plan is None:
            return None
        current = recorded if recorded is not None and recorded.revision == alias.revision else None
        try:
            return self._advance(alias, recorded, current, plan, retry=retry)
        except (MaasError, ClientError) as error:
            if isinstance(error, ConflictError):
                raise
            return self._fail(alias, recorded, _message(error), endpoint=plan.endpoint, config=plan.config)

    def _advance(
        self,
        alias: Alias,
        recorded: TargetState | None,
        current: TargetState | None,
        plan: EndpointPlan,
        *,
        retry: bool,
    ) -> TargetState:
        observed = self._observe(alias, recorded, current, plan)
        if observed is not None:
            return observed
        if (
            current is not None
            and current.state is TargetPhase.FAILED
            and not current.retryable
            and not retry
        ):
            return current
        return self._start(alias, recorded, current, plan, retry=retry)

    def _observe(
        self, alias: Alias, recorded: TargetState | None, current: TargetState | None, plan: EndpointPlan
    ) -> TargetState | None:
        """The state that what the endpoint shows now makes; None when it is free to update."""
        scaling = current.scaling if current is not None else None
        if plan.done:
            if scaling is not None:
                self.deployer.restore_scaling(plan, scaling)
            return self._record(
                alias,
                recorded,
                TargetPhase.IN_SERVICE,
                endpoint=plan.endpoint,
                config=plan.config,
                event=f"endpoint {plan.endpoint} serves {plan.config} ({_weights(plan.weights)})",
            )
        if plan.status in BUSY:
            waiting = "" if plan.config == plan.current_config else f", then to {plan.config}"
            return self._record(
                alias,
                recorded,
                TargetPhase.UPDATING,
                endpoint=plan.endpoint,
                config=plan.config,
                scaling=scaling,
                reason=f"endpoint {plan.endpoint} is {plan.status}{waiting}",
            )
        if plan.status == "Failed" and plan.config == plan.current_config:
            return self._record(
                alias,
                recorded,
                TargetPhase.FAILED,
                endpoint=plan.endpoint,
                config=plan.config,
                retryable=False,
                reason=f"endpoint {plan.endpoint} failed: {plan.failure or 'no reason given'}",
            )
        started_here = (
            current is not None
            and current.state is TargetPhase.UPDATING
            and current.config == plan.config
            and plan.failure is not None
        )
        if started_here:
            # The update this revision started ended on another config: SageMaker rolled it back.
            return self._record(
                alias,
                recorded,
                TargetPhase.FAILED,
                endpoint=plan.endpoint,
                config=plan.config,
                retryable=False,
                reason=f"the update of endpoint {plan.endpoint} to {plan.config} did not finish; SageMaker "
                f"kept {plan.current_config}: {plan.failure or 'no reason given'}",
            )
        return None

    def _start(
        self,
        alias: Alias,
        recorded: TargetState | None,
        current: TargetState | None,
        plan: EndpointPlan,
        *,
        retry: bool,
    ) -> TargetState:
        """Record `updating` and start the endpoint's update to `plan.config`."""
        scaling = current.scaling if current is not None else None
        # Recorded before anything changes: a crash after this point leaves `updating` with the
        # saved autoscaling, and the next step finds the update or starts it again.
        scaling = scaling or self.deployer.scaling_of(plan)
        state = self._record(
            alias,
            recorded,
            TargetPhase.UPDATING,
            endpoint=plan.endpoint,
            config=plan.config,
            scaling=scaling,
            event=f"endpoint {plan.endpoint}: updating to {plan.config} ({_weights(plan.weights)}, "
            + ("a new endpoint config" if plan.new_config else "re-using endpoint config")
            + "), blue/green",
        )
        try:
            self.deployer.start_update(plan)
        except ClientError as error:
            if "in-progress" not in str(error) and "Cannot update" not in str(error):
                raise
            return state  # another update is under way; its end is the next event
        after = self.deployer.plan(alias)
        if after is not None and after.done:
            return self._advance(alias, state, state, after, retry=retry)
        return state

    # Recording

    def _fail(
        self,
        alias: Alias,
        recorded: TargetState | None,
        reason: str,
        *,
        endpoint: str | None = None,
        config: str | None = None,
    ) -> TargetState:
        self._record(alias, recorded, TargetPhase.FAILED, reason=reason, endpoint=endpoint, config=config)
        raise ReconcileFailed(f"alias '{alias.alias}' of model '{alias.name}': {reason}")

    def _record(
        self,
        alias: Alias,
        recorded: TargetState | None,
        phase: TargetPhase,
        *,
        reason: str | None = None,
        endpoint: str | None = None,
        config: str | None = None,
        scaling: dict[str, Any] | None = None,
        retryable: bool = True,
        event: str | None = None,
    ) -> TargetState:
        same = recorded is not None and recorded.revision == alias.revision
        events = list(recorded.events) if same and recorded is not None else []
        line = event or f"{phase.value}" + (f": {reason}" if reason else "")
        if not events or events[-1] != line:
            events = [*events, line][-MAX_EVENTS:]
        state = TargetState(
            name=alias.name,
            alias=alias.alias,
            revision=alias.revision,
            state=phase,
            reason=reason,
            endpoint=endpoint,
            config=config,
            retryable=retryable,
            events=events,
            scaling=scaling,
            sequence=(recorded.sequence if recorded is not None else 0) + 1,
            updated_at=utc_now(),
        )
        if recorded is not None and same and _unchanged(recorded, state):
            return recorded  # nothing new: no write, so a sweep costs reads only
        self.registry.store.put_target_state(state)
        logger.info("alias '%s' of model '%s' r%d: %s", alias.alias, alias.name, alias.revision, line)
        return state


def _unchanged(before: TargetState, after: TargetState) -> bool:
    keys = ("state", "reason", "endpoint", "config", "retryable", "events", "scaling")
    return all(getattr(before, key) == getattr(after, key) for key in keys)


def _message(error: Exception) -> str:
    return error.message if isinstance(error, MaasError) else str(error)


def _weights(weights: dict[int, int]) -> str:
    return ", ".join(f"v{version} {weight}%" for version, weight in sorted(weights.items()))
