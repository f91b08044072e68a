"""The steps of a release, each printed as it happens:

register (with its Git provenance) -> staging alias -> wait until staging serves it ->
score staging and prod through the deployed API -> gate -> [canary while the alarms
stay quiet] -> prod. The exit code tells a pipeline where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from maas.errors import BackendUnavailable, ConflictError, InvalidInput
from maas.optimize.evaluation import load_evaluation
from maas.release.gate import Scorecard, judge, rows, score_aliases

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from maas.config import ReleaseConfig
    from maas.optimize.evaluation import EvaluationSet
    from maas.registry import Registry
    from maas.registry.models import Alias
    from maas.release.oip_client import OipHttpClient
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
    ) -> None:
        self.registry = registry
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
        evaluation = load_evaluation(evaluation_file)
        rows(evaluation)
        if not artifact.is_file():
            raise InvalidInput(f"no artifact file at {artifact}")
        policy = self.policy
        baseline = self._serving(model, policy.production_alias)
        if dry_run:
            return self._plan(model, artifact, provenance, baseline)

        record = self.registry.register(
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
        self._wait_until_served(model, policy.staging_alias, version, evaluation)

        if baseline is None:
            (card,) = score_aliases(self.client, model, [policy.staging_alias], evaluation, policy.batch_rows)
            self.say(f"scored {_card(card)}")
            self.say(f"{model} has no '{policy.production_alias}' alias yet: nothing to compare with")
        else:
            candidate, current = score_aliases(
                self.client,
                model,
                [policy.staging_alias, policy.production_alias],
                evaluation,
                policy.batch_rows,
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
            changed = self.registry.promote(model, alias, version)
        else:
            changed = self.registry.canary(model, alias, weights)
        described = ", ".join(f"v{v} {w}%" for v, w in sorted(weights.items()))
        self.say(f"{alias} -> {described} (revision {changed.revision})")
        self.on_alias(changed)

    def _wait_until_served(self, model: str, alias: str, version: int, evaluation: EvaluationSet) -> None:
        """Functions re-read aliases after their TTL: wait until the alias answers with `version`."""
        probe = {name: array[:1] for name, array in evaluation.inputs.items()}
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
        self.say(f"canary for {canary.minutes:g} min, watching CloudWatch alarms '{self.alarm_prefix}*'")
        deadline = time.monotonic() + canary.minutes * 60
        while True:
            firing = self._firing_alarms()
            if firing:
                rolled = self.registry.rollback(model, prod)
                self.on_alias(rolled)
                message = (
                    f"rolled back: alarm(s) {', '.join(firing)} fired during the canary of version {version}; "
                    f"{prod} serves version {old} again (revision {rolled.revision})"
                )
                self.say(message)
                return message
            if time.monotonic() >= deadline:
                self.say("canary quiet: no alarm fired")
                return None
            self.sleep(min(canary.poll_seconds, max(0.0, deadline - time.monotonic())))

    def _firing_alarms(self) -> list[str]:
        if self.cloudwatch is None:
            return []
        answer = self.cloudwatch.describe_alarms(AlarmNamePrefix=self.alarm_prefix, StateValue="ALARM")
        return sorted(
            alarm["AlarmName"] for alarm in answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", [])
        )

    def _plan(
        self, model: str, artifact: Path, provenance: Provenance | None, baseline: int | None
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
                f"score it through {self.client.base_url}; {model} has no {policy.production_alias} yet"
            )
        else:
            steps.append(
                f"score it and prod's version {baseline} through {self.client.base_url}; stop unless the "
                f"quality drop <= {policy.max_quality_drop} and p95 ratio <= {policy.max_latency_ratio}"
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
