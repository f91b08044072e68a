"""What `maas optimize` measured: sizes, latency and quality of the original and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from maas.optimize.evaluation import Measurement


class Mode(StrEnum):
    GRAPH = "graph"  # graph optimizations only, weights untouched
    DYNAMIC = "int8-dynamic"  # int8 weights, activations quantized on the fly
    STATIC = "int8-static"  # int8 weights and activations, ranges from a calibration file
    PRUNE = "prune"  # hidden units removed (--prune RATIO), weights otherwise untouched


@dataclass(frozen=True)
class OptimizationReport:
    mode: Mode
    metric: str
    original: Measurement
    optimized: Measurement
    original_size: int
    optimized_size: int
    output: Path | None
    scored_output: str = ""
    kept_float: tuple[str, ...] = ()  # operators holding weights the quantizer left as they were
    output_changes: dict[str, float] = field(default_factory=dict)  # unscored outputs' largest change
    pruned: tuple[str, ...] = ()  # each pruned layer, 'weight': units before -> after

    @property
    def quality_drop(self) -> float:
        """Points of accuracy lost, or percent of RMSE gained (positive is worse)."""
        if self.metric == "accuracy":
            return self.original.quality - self.optimized.quality
        base = self.original.quality or 1e-12
        return (self.optimized.quality - self.original.quality) / base * 100

    @property
    def size_ratio(self) -> float:
        return self.optimized_size / self.original_size

    def size_change(self) -> str:
        """Like '333 -> 504 bytes (1.51x the input)'."""
        return f"{self.original_size:,} -> {self.optimized_size:,} bytes ({self.size_ratio:.2f}x the input)"

    def table(self) -> str:
        rows = [
            ("", "original", "optimized", "ratio"),
            (
                "size (bytes)",
                f"{self.original_size}",
                f"{self.optimized_size}",
                f"{self.size_ratio:.2f}",
            ),
            (
                "latency (ms)",
                f"{self.original.latency_ms:.3f}",
                f"{self.optimized.latency_ms:.3f}",
                f"{self.optimized.latency_ms / self.original.latency_ms:.2f}",
            ),
            (
                self.metric,
                f"{self.original.quality:.4f}",
                f"{self.optimized.quality:.4f}",
                f"drop {self.quality_drop:+.2f}",
            ),
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows
        )

    def notes(self) -> list[str]:
        """What the table does not say: what was scored, what else moved, what stayed float."""
        notes = []
        if self.scored_output:
            notes.append(f"{self.metric} is scored on output '{self.scored_output}'")
        for name, change in self.output_changes.items():
            notes.append(f"'{name}' is not scored: its values moved by at most {change:.4g}")
        if self.pruned:
            notes.append(f"pruned {len(self.pruned)} hidden layer(s): {', '.join(self.pruned)}")
        if self.kept_float:
            notes.append(f"kept in float ({self.mode} does not rewrite them): {', '.join(self.kept_float)}")
        return notes

    def summary(self) -> str:
        """The table, then its notes."""
        return "\n".join([self.table(), *self.notes()])

    def as_metrics(self) -> dict[str, float]:
        """The figures recorded on a registered version."""
        return {
            self.metric: self.optimized.quality,
            f"{self.metric}_original": self.original.quality,
            "size_ratio": self.size_ratio,
            "latency_ratio": self.optimized.latency_ms / self.original.latency_ms,
        }
