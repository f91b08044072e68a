"""The steps of a release, each printed as it happens:

checks (the API answers and accepts the credentials, the evaluation file fits the artifact
and prod) -> register (with its Git provenance) -> staging alias -> wait until staging serves
it -> score staging and prod through the deployed API -> gate -> [canary while the alarms
stay quiet] -> prod. The exit code tells a pipeline where it stopped; a release refused by
the checks has changed nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from maas.errors import BackendUnavailable, ConflictError, InvalidInput, MaasError
from maas.registry.models import TargetPhase
from maas.release.gate import Scorecard, judge, requests, rows, score_aliases
from maas.release.preflight import (
    artifact_signature,
    check_api_serves_registry,
    fit_evaluation,
    read_evaluation,
    signature_from_metadata,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from maas.config import ReleaseConfig
    from maas.control import ControlPlane
    from maas.registry import Registry
    from maas.registry.models import Alias
    from maas.release.oip_client import OipHttpClient
    from maas.release.preflight import FittedEvaluation
    from maas.release.provenance import Provenance


class ExitCode(IntEnum):
    RELEASED = 0  # or, with --dry-run, planned
    ERROR = 2  # bad input or a failing call: nothing promoted to prod
    STOPPED_AT_STAGING = 3  # the gate refused it; prod serves what it served
    ROLLED_BACK = 4  # an alarm fired during the canary; prod is back on the old version


@dataclass(frozen=True)
class ReleaseOutcome:
    code: ExitCode
    version: int | None
    message: str


class Release:
    def __init__(
        self,
        registry: Registry,
        client: OipHttpClient,
        policy: ReleaseConfig,
        *,
        alarm_prefix: str,
        cloudwatch: Any = None,
        say: Callable[[str], None] = print,
        on_alias: Callable[[Alias], None] = lambda alias: None,
        sleep: Callable[[float], None] = time.sleep,
        control: ControlPlane | None = None,
    ) -> None:
        """Every change a release makes goes through `control` (by default a control plane over
        `registry`); `on_alias` hears of each alias it moved."""
        from maas.control import ControlPlane

        self.registry = registry
        self.control = control or ControlPlane(registry)
        self.client = client
        self.policy = policy
        self.alarm_prefix = alarm_prefix
        self.cloudwatch = cloudwatch
        self.say = say
        self.on_alias = on_alias
        self.sleep = sleep

    def run(
        self,
        model: str,
        artifact: Path,
        evaluation_file: Path,
        *,
        provenance: Provenance | None,
        target: str = "lambda",
        dry_run: bool = False,
    ) -> ReleaseOutcome:
        policy = self.policy
        try:
            baseline = self._serving(model, policy.production_alias)
            fitted = self._checked(model, artifact, evaluation_file, baseline)
        except MaasError as error:
            message = f"refused before any change: {error.message}; nothing was registered"
            self.say(message)
            return ReleaseOutcome(ExitCode.ERROR, None, message)
        if dry_run:
            return self._plan(model, artifact, provenance, baseline, fitted)
        evaluation = fitted.evaluation

        record = self.control.register(
            model,
            artifact,
            target=target,
            source_commit=provenance.commit if provenance else None,
            labels=provenance.labels() if provenance else {},
        )
        origin = f"commit {provenance.commit[:12]} by {provenance.author}" if provenance else "no Git commit"
        self.say(f"registered {model} version {record.version} ({origin})")
        version = record.version
        self._point(model, policy.staging_alias, {version: 100}, "promote")
        self._wait_until_served(model, policy.staging_alias, version, fitted)

        if baseline is None:
            (card,) = score_aliases(
                self.client,
                model,
                [policy.staging_alias],
                evaluation,
                fitted.rows_per_request,
                exact=fitted.exact,
            )
            self.say(f"scored {_card(card)}")
            self.say(f"{model} has no '{policy.production_alias}' alias yet: nothing to compare with")
        else:
            candidate, current = score_aliases(
                self.client,
                model,
                [policy.staging_alias, policy.production_alias],
                evaluation,
                fitted.rows_per_request,
                exact=fitted.exact,
            )
            self.say(f"scored {_card(candidate)}")
            self.say(f"scored {_card(current)}")
            verdict = judge(
                candidate,
                current,
                higher_is_better=evaluation.higher_is_better,
                max_quality_drop=policy.max_quality_drop,
                max_latency_ratio=policy.max_latency_ratio,
            )
            if not verdict.passed:
                message = (
                    f"stopped at {policy.staging_alias}: version {version} {evaluation.metric} "
                    f"{candidate.quality:.3f} vs prod version {current.version} {current.quality:.3f}; "
                    + "; ".join(verdict.reasons)
                    + f". {policy.production_alias} still serves version {current.version}."
                )
                self.say(message)
                return ReleaseOutcome(ExitCode.STOPPED_AT_STAGING, version, message)
            self.say("gate passed: " + f"{evaluation.metric} and p95 latency within the thresholds")
            if policy.canary is not None:
                rolled_back = self._canary(model, version, int(current.version))
                if rolled_back is not None:
                    return ReleaseOutcome(ExitCode.ROLLED_BACK, version, rolled_back)
        self._point(model, policy.production_alias, {version: 100}, "promote")
        message = f"released: {policy.production_alias} serves {model} version {version}"
        self.say(message)
        return ReleaseOutcome(ExitCode.RELEASED, version, message)

    def _checked(
        self, model: str, artifact: Path, evaluation_file: Path, baseline: int | None
    ) -> FittedEvaluation:
        """What can be checked before anything changes; raises MaasError saying what failed."""
        evaluation = read_evaluation(evaluation_file)
        if not artifact.is_file():
            raise InvalidInput(f"no artifact file at {artifact}")
        signatures = {"the model": artifact_signature(artifact)}
        self.client.ready()
        signed = "signed" if self.client.signs else "unsigned"
        self.say(f"the API at {self.client.base_url} answers {signed} requests")
        head = self.registry.store.head(model)
        prod = self.policy.production_alias
        metadata = self.client.metadata(model, prod) if baseline is not None else None
        if head is not None:  # a model new to this registry has nothing the API could disagree with
            check_api_serves_registry(
                model,
                self.client.base_url,
                head.latest_version,
                self.client.metadata(model).get("versions", []),
                (prod, baseline, metadata) if baseline is not None else None,
            )
        if baseline is not None:
            signatures[f"{prod}'s version {baseline}"] = signature_from_metadata(metadata)
        fitted = fit_evaluation(evaluation, signatures, self.policy.batch_rows)
        self.say(f"{rows(evaluation)} evaluation rows fit the model; {fitted.describe()}")
        if self.policy.canary is not None and baseline is not None and not self._watched_alarms():
            self.say(self._unwatched())
        return fitted

    def _serving(self, model: str, alias: str) -> int | None:
        if self.registry.store.head(model) is None:
            return None
        found = self.registry.store.get_alias(model, alias)
        if found is None:
            return None
        if len(found.weights) != 1:
            raise ConflictError(
                f"'{alias}' of '{model}' is split between versions {found.versions}; finish that canary first"
            )
        return found.versions[0]

    def _point(self, model: str, alias: str, weights: dict[int, int], action: str) -> None:
        if action == "promote":
            (version,) = weights
            changed = self.control.promote(model, alias, version)
        else:
            changed = self.control.canary(model, alias, weights)
        described = ", ".join(f"v{v} {w}%" for v, w in sorted(weights.items()))
        self.say(f"{alias} -> {described} (revision {changed.revision})")
        self._followed(changed)

    def _followed(self, changed: Alias) -> None:
        """After an alias change: a SageMaker model's endpoint must serve it before the release
        goes on (a canary watched on the old fleet watches nothing). The reconciler moves it;
        this waits for the state it records, `wait_seconds` at most."""
        self.on_alias(changed)
        state = self.control.wait_for_target(
            changed.name, changed.alias, timeout=self.policy.wait_seconds, on_event=self.say
        )
        if state is not None and state.state is not TargetPhase.IN_SERVICE:
            raise BackendUnavailable(
                f"the endpoint of {changed.name} is {state.state.value} on {changed.alias} revision "
                f"{changed.revision}" + (f": {state.reason}" if state.reason else "")
            )

    def _wait_until_served(self, model: str, alias: str, version: int, fitted: FittedEvaluation) -> None:
        """Functions re-read aliases after their TTL: wait until the alias answers with `version`."""
        probe, _ = next(requests(fitted.evaluation, fitted.rows_per_request, exact=fitted.exact))
        deadline = time.monotonic() + self.policy.wait_seconds
        while True:
            served, _, _ = self.client.infer(model, alias, probe)
            if served == str(version):
                self.say(f"{alias} serves version {version} through {self.client.base_url}")
                return
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"{alias} still served version {served} after {self.policy.wait_seconds:.0f} s, not {version}"
                )
            self.sleep(1.0)

    def _canary(self, model: str, version: int, old: int) -> str | None:
        """Split prod while the alarms stay quiet; the message if an alarm fired and prod rolled back."""
        canary = self.policy.canary
        assert canary is not None
        prod = self.policy.production_alias
        self._point(model, prod, {old: 100 - canary.weight, version: canary.weight}, "canary")
        watched = self._watched_alarms()
        if watched:
            self.say(
                f"canary for {canary.minutes:g} min, watching {len(watched)} CloudWatch alarm(s) "
                f"'{self.alarm_prefix}*': {', '.join(watched[:5])}{', ...' if len(watched) > 5 else ''}"
            )
        else:
            self.say(f"canary for {canary.minutes:g} min; {self._unwatched()}")
        deadline = time.monotonic() + canary.minutes * 60
        while True:
            firing = self._firing_alarms()
            if firing:
                rolled = self.control.rollback(model, prod)
                self._followed(rolled)
                message = (
                    f"rolled back: alarm(s) {', '.join(firing)} fired during the canary of version {version}; "
                    f"{prod} serves version {old} again (revision {rolled.revision})"
                )
                self.say(message)
                return message
            if time.monotonic() >= deadline:
                if watched:
                    self.say("canary quiet: no alarm fired")
                else:
                    self.say(f"canary over: the canary watched nothing ({self._unwatched()})")
                return None
            self.sleep(min(canary.poll_seconds, max(0.0, deadline - time.monotonic())))

    def _watched_alarms(self) -> list[str]:
        """The alarms a canary watches: those whose names start with the prefix, in any state."""
        return sorted(alarm["AlarmName"] for alarm in self._alarms())

    def _alarms(self) -> list[dict[str, Any]]:
        if self.cloudwatch is None:
            return []
        answer = self.cloudwatch.describe_alarms(AlarmNamePrefix=self.alarm_prefix)
        return [*answer.get("MetricAlarms", []), *answer.get("CompositeAlarms", [])]

    def _unwatched(self) -> str:
        return (
            f"no CloudWatch alarm matches '{self.alarm_prefix}*': the canary watched nothing, and no alarm "
            "can roll it back (set release.alarm_prefix, or deploy the stack's alarms)"
        )

    def _firing_alarms(self) -> list[str]:
        # Each alarm's own state, not DescribeAlarms' StateValue filter: moto ignores that filter
        # when AlarmNamePrefix is given, and an alarm in OK state would roll the canary back.
        return sorted(alarm["AlarmName"] for alarm in self._alarms() if alarm.get("StateValue") == "ALARM")

    def _plan(
        self,
        model: str,
        artifact: Path,
        provenance: Provenance | None,
        baseline: int | None,
        fitted: FittedEvaluation,
    ) -> ReleaseOutcome:
        policy = self.policy
        head = self.registry.store.head(model)
        number = (head.latest_version if head else 0) + 1
        origin = f"commit {provenance.commit[:12]} by {provenance.author}" if provenance else "no Git commit"
        steps = [
            f"register {artifact} as {model} version {number} ({origin})",
            f"point {policy.staging_alias} at version {number} and wait until it serves it",
        ]
        if baseline is None:
            steps.append(
                f"score it through {self.client.base_url} ({fitted.describe()}); "
                f"{model} has no {policy.production_alias} yet"
            )
        else:
            steps.append(
                f"score it and prod's version {baseline} through {self.client.base_url} "
                f"({fitted.describe()}); stop unless the quality drop <= {policy.max_quality_drop} "
                f"and p95 ratio <= {policy.max_latency_ratio}"
            )
            if policy.canary is not None:
                steps.append(
                    f"canary {policy.canary.weight}% for {policy.canary.minutes:g} min; roll back if an alarm "
                    f"'{self.alarm_prefix}*' fires"
                )
        steps.append(f"point {policy.production_alias} at version {number}")
        message = "dry run, nothing changed; the plan:\n" + "\n".join(
            f"  {i}. {s}" for i, s in enumerate(steps, 1)
        )
        self.say(message)
        return ReleaseOutcome(ExitCode.RELEASED, None, message)


def _card(card: Scorecard) -> str:
    return (
        f"{card.alias} (version {card.version}): quality {card.quality:.3f}, "
        f"p95 {card.p95_ms:.1f} ms over {card.requests} requests"
    )
