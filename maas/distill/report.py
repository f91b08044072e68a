"""What `maas distill` measured: the teacher and the student side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class DistillReport:
    student: str  # what was trained, like 'mlp 64' or 'gbm, int8-dynamic'
    teacher_size: int
    student_size: int
    teacher_latency_ms: float
    student_latency_ms: float
    rows_trained: int
    rows_scored: int
    classifier: bool
    # Classifier: rows where the student's label is the teacher's, in percent. Regressor: the
    # student's RMSE to the teacher in percent of the teacher's own spread (0 is perfect).
    agreement: float
    metric: str = ""  # accuracy or rmse against the data's labels or targets; "" without them
    teacher_quality: float = float("nan")
    student_quality: float = float("nan")
    output: Path | None = None

    @property
    def agreement_drop(self) -> float:
        """Points of agreement short of the teacher's own answers (classifier), or the
        student's distance to the teacher in percent of its spread (regressor)."""
        return 100 - self.agreement if self.classifier else self.agreement

    @property
    def quality_drop(self) -> float:
        """Accuracy points lost, or percent of RMSE gained, against the labels (0 without them)."""
        if not self.metric:
            return 0.0
        if self.metric == "accuracy":
            return self.teacher_quality - self.student_quality
        return (self.student_quality - self.teacher_quality) / (self.teacher_quality or 1e-12) * 100

    @property
    def size_ratio(self) -> float:
        return self.student_size / self.teacher_size

    def table(self) -> str:
        rows = [
            ("", "teacher", "student", "ratio"),
            ("size (bytes)", f"{self.teacher_size}", f"{self.student_size}", f"{self.size_ratio:.3f}"),
            (
                "latency (ms)",
                f"{self.teacher_latency_ms:.3f}",
                f"{self.student_latency_ms:.3f}",
                f"{self.student_latency_ms / self.teacher_latency_ms:.2f}",
            ),
        ]
        if self.metric:
            rows.append(
                (
                    self.metric,
                    f"{self.teacher_quality:.4f}",
                    f"{self.student_quality:.4f}",
                    f"drop {self.quality_drop:+.2f}",
                )
            )
        if self.classifier:
            rows.append(("agreement (%)", "100", f"{self.agreement:.2f}", f"drop {self.agreement_drop:+.2f}"))
        else:
            rows.append(("rmse to teacher (% of its spread)", "0", f"{self.agreement:.2f}", ""))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )

    def summary(self) -> str:
        return "\n".join(
            [
                self.table(),
                f"student: {self.student}, trained on {self.rows_trained} rows of the teacher's answers, "
                f"scored on {self.rows_scored} held-out rows",
            ]
        )

    def as_metrics(self) -> dict[str, float]:
        metrics = {"agreement": self.agreement, "size_ratio": self.size_ratio,
                   "latency_ratio": self.student_latency_ms / self.teacher_latency_ms}  # fmt: skip
        if self.metric:
            metrics[self.metric] = self.student_quality
            metrics[f"{self.metric}_teacher"] = self.teacher_quality
        return metrics
