"""The release gate: the candidate and the version prod serves, scored on the same rows
through the deployed API, requests interleaved so both see the same conditions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from maas.errors import InvalidInput
from maas.optimize.evaluation import score

if TYPE_CHECKING:
    from collections.abc import Iterator

    from maas.optimize.evaluation import EvaluationSet
    from maas.release.oip_client import OipHttpClient


@dataclass(frozen=True)
class Scorecard:
    alias: str
    version: str
    quality: float
    p95_ms: float
    requests: int


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str]


def rows(evaluation: EvaluationSet) -> int:
    counts = {len(array) for array in evaluation.inputs.values()}
    if len(counts) != 1:
        raise InvalidInput("the evaluation file's input arrays have different numbers of rows")
    return counts.pop()


def requests(
    evaluation: EvaluationSet, batch_rows: int, *, exact: bool = False
) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """The inputs of each request, and how many of its rows are evaluation rows: with `exact`,
    every request holds `batch_rows` rows, the last one padded by repeating its final row."""
    total = rows(evaluation)
    for start in range(0, total, batch_rows):
        chunk = {name: array[start : start + batch_rows] for name, array in evaluation.inputs.items()}
        real = min(batch_rows, total - start)
        if exact and real < batch_rows:
            chunk = {
                name: np.concatenate([part, np.repeat(part[-1:], batch_rows - real, axis=0)])
                for name, part in chunk.items()
            }
        yield chunk, real


TIMED_REQUESTS = 40  # per alias at least, so that a p95 is not simply the slowest of a few


def score_aliases(
    client: OipHttpClient,
    model: str,
    aliases: list[str],
    evaluation: EvaluationSet,
    batch_rows: int,
    *,
    exact: bool = False,
) -> list[Scorecard]:
    """Send every row of `evaluation` to each alias, request by request, alternating aliases.

    Before timing, each alias answers one request of every shape sent (a version just staged
    has cold sessions, prod's are warm); which alias goes first alternates from pair to pair;
    and the requests are cycled, untimed for quality, until each alias has TIMED_REQUESTS
    latencies."""
    batches = list(requests(evaluation, batch_rows, exact=exact))
    shapes = {_shape(chunk): chunk for chunk, _ in batches}
    for chunk in shapes.values():
        for alias in aliases:
            client.infer(model, alias, chunk)
    collected: dict[str, dict[str, list[np.ndarray]]] = {alias: {} for alias in aliases}
    latencies: dict[str, list[float]] = {alias: [] for alias in aliases}
    versions: dict[str, set[str]] = {alias: set() for alias in aliases}
    first_output: dict[str, str] = {}
    turns = max(len(batches), TIMED_REQUESTS)
    for turn in range(turns):
        chunk, real = batches[turn % len(batches)]
        scored = turn < len(batches)
        for alias in aliases if turn % 2 == 0 else aliases[::-1]:
            version, outputs, elapsed = client.infer(model, alias, chunk)
            versions[alias].add(version)
            latencies[alias].append(elapsed)
            if not scored:
                continue
            first_output.setdefault(alias, next(iter(outputs)))
            for name, array in outputs.items():
                collected[alias].setdefault(name, []).append(array[:real])  # the padding's outputs go
    cards = []
    for alias in aliases:
        if len(versions[alias]) != 1:
            raise InvalidInput(
                f"alias '{alias}' of '{model}' answered with versions {sorted(versions[alias])} during the "
                "evaluation (a canary or a promotion under way); try again when it is settled"
            )
        outputs = {name: np.concatenate(parts) for name, parts in collected[alias].items()}
        cards.append(
            Scorecard(
                alias=alias,
                version=versions[alias].pop(),
                quality=score(outputs, first_output[alias], evaluation),
                p95_ms=float(np.percentile(latencies[alias], 95)),
                requests=len(latencies[alias]),
            )
        )
    return cards


def _shape(chunk: dict[str, np.ndarray]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple((name, array.shape) for name, array in sorted(chunk.items()))


def judge(
    candidate: Scorecard,
    baseline: Scorecard,
    *,
    higher_is_better: bool,
    max_quality_drop: float,
    max_latency_ratio: float,
) -> Verdict:
    """No worse than `baseline` beyond the thresholds, in quality and in p95 latency.

    `max_quality_drop` is in accuracy points when higher is better, and in percent of
    prod's RMSE otherwise, as `maas optimize --max-drop` reads it: an absolute RMSE
    increase means nothing without the scale of the targets.
    """
    reasons = []
    unmeasured = _unmeasured(candidate, baseline, higher_is_better=higher_is_better)
    if unmeasured:
        reasons.append(unmeasured)
    elif higher_is_better:
        drop = baseline.quality - candidate.quality
        if drop > max_quality_drop:
            reasons.append(f"quality dropped by {drop:.3f} (allowed {max_quality_drop})")
    else:
        rise = _percent_rise(candidate.quality, baseline.quality)
        if rise > max_quality_drop:
            reasons.append(f"rmse rose by {rise:.1f}% of prod's (allowed {max_quality_drop}%)")
    ratio = candidate.p95_ms / baseline.p95_ms if baseline.p95_ms > 0 else 1.0
    if ratio > max_latency_ratio:
        reasons.append(f"p95 latency is {ratio:.2f}x prod's (allowed {max_latency_ratio}x)")
    return Verdict(passed=not reasons, reasons=reasons)


def _unmeasured(candidate: Scorecard, baseline: Scorecard, *, higher_is_better: bool) -> str | None:
    """Why the scores compare nothing, if they don't: a gate that cannot measure quality must not
    pass on latency alone."""
    if not (np.isfinite(candidate.quality) and np.isfinite(baseline.quality)):
        return f"quality could not be measured (scores {candidate.quality} and {baseline.quality})"
    if higher_is_better and candidate.quality == 0 and baseline.quality == 0:
        return (
            "quality could not be measured: neither version matched a single label "
            "(are the labels the class ids the model outputs?)"
        )
    return None


def _percent_rise(candidate: float, baseline: float) -> float:
    if baseline > 0:
        return (candidate - baseline) / baseline * 100
    return 0.0 if candidate <= baseline else float("inf")  # prod is perfect: any error is a regression
