"""Per-version inference statistics of one process, in the terms of Triton's statistics extension.

Counted by the data plane that answers: on Lambda each warm instance counts its own
requests since its cold start (CloudWatch holds the fleet's totals), as each Triton
server counts its own since it started.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from maas.protocol.wire import DurationStat, InferenceStats, ModelStatistics

# The phases of a served request, as Triton's inference_stats name them.
PHASES = ("queue", "compute_input", "compute_infer", "compute_output")


class Stopwatch:
    """Times the phases of one request: `lap(phase)` closes the phase begun at the last lap."""

    def __init__(self) -> None:
        self.started = self._last = time.perf_counter_ns()
        self.laps: dict[str, int] = {}

    def lap(self, phase: str) -> int:
        """The nanoseconds since the last lap (or the start), kept as `phase`."""
        now = time.perf_counter_ns()
        self.laps[phase] = now - self._last
        self._last = now
        return self.laps[phase]

    def elapsed_ns(self) -> int:
        return time.perf_counter_ns() - self.started


@dataclass
class _Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int) -> None:
        self.count += 1
        self.ns += ns

    def stat(self) -> DurationStat:
        return DurationStat(count=self.count, ns=self.ns)


@dataclass
class _VersionCounts:
    success: _Duration = field(default_factory=_Duration)
    fail: _Duration = field(default_factory=_Duration)
    phases: dict[str, _Duration] = field(default_factory=lambda: {phase: _Duration() for phase in PHASES})
    last_inference_ms: int = 0


class InferenceStatistics:
    """Successes and failures per model version, with the time each phase took. Thread-safe."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], _VersionCounts] = {}
        self._lock = threading.Lock()

    def succeeded(self, name: str, version: str, watch: Stopwatch) -> None:
        """Count one successful request of `name` `version`, timed by `watch`."""
        total = watch.elapsed_ns()
        with self._lock:
            counts = self._counts_of(name, version)
            counts.success.add(total)
            for phase in PHASES:
                counts.phases[phase].add(watch.laps.get(phase, 0))
            counts.last_inference_ms = time.time_ns() // 1_000_000

    def failed(self, name: str, version: str, ns: int) -> None:
        """Count one request of `name` `version` that failed after `ns` nanoseconds."""
        with self._lock:
            counts = self._counts_of(name, version)
            counts.fail.add(ns)
            counts.last_inference_ms = time.time_ns() // 1_000_000

    def of(self, name: str, version: str) -> ModelStatistics:
        """The statistics of `name` `version` so far (zeros if it served nothing here)."""
        with self._lock:
            counts = self._counts.get((name, version)) or _VersionCounts()
            phases = {phase: counts.phases[phase].stat() for phase in PHASES}
            # Each request is one execution: maas does not batch requests (max_batch_size 0).
            return ModelStatistics(
                name=name,
                version=version,
                last_inference=counts.last_inference_ms,
                inference_count=counts.success.count,
                execution_count=counts.success.count,
                inference_stats=InferenceStats(
                    success=counts.success.stat(),
                    fail=counts.fail.stat(),
                    queue=phases["queue"],
                    compute_input=phases["compute_input"],
                    compute_infer=phases["compute_infer"],
                    compute_output=phases["compute_output"],
                ),
                batch_stats=[],
            )

    def _counts_of(self, name: str, version: str) -> _VersionCounts:
        return self._counts.setdefault((name, version), _VersionCounts())


__all__ = ["InferenceStatistics", "Stopwatch"]
