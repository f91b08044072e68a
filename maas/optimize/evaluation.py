"""Evaluation and calibration files, and scoring a model on them.

An evaluation file is a NumPy `.npz` holding one array per model input (by input name)
and either `labels` (classification: accuracy in points) or `targets` (regression:
RMSE). A calibration file holds the input arrays only.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from maas.errors import InvalidInput

if TYPE_CHECKING:
    from pathlib import Path

    from maas.runtimes import Runtime

LABELS = "labels"
TARGETS = "targets"


@dataclass(frozen=True)
class EvaluationSet:
    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    targets: np.ndarray | None = None

    @property
    def metric(self) -> str:
        return "accuracy" if self.labels is not None else "rmse"

    @property
    def higher_is_better(self) -> bool:
        return self.labels is not None


@dataclass(frozen=True)
class Measurement:
    quality: float
    latency_ms: float


def load_arrays(path: Path, *, kind: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise InvalidInput(f"{kind} file {path} is not a NumPy .npz archive: {error}") from None


def load_evaluation(path: Path) -> EvaluationSet:
    """Read an evaluation file; raises InvalidInput saying what it lacks."""
    arrays = load_arrays(path, kind="evaluation")
    labels, targets = arrays.pop(LABELS, None), arrays.pop(TARGETS, None)
    if (labels is None) == (targets is None):
        raise InvalidInput(f"evaluation file {path} needs exactly one of '{LABELS}' or '{TARGETS}'")
    if not arrays:
        raise InvalidInput(f"evaluation file {path} holds no input arrays")
    return EvaluationSet(inputs=arrays, labels=labels, targets=targets)


def load_calibration(path: Path) -> dict[str, np.ndarray]:
    arrays = load_arrays(path, kind="calibration")
    if not arrays:
        raise InvalidInput(f"calibration file {path} holds no input arrays")
    return arrays


def measure(runtime: Runtime, evaluation: EvaluationSet, repeats: int = 5) -> Measurement:
    """Quality on the whole set, and the median latency of predicting it as one batch."""
    missing = [spec.name for spec in runtime.signature.inputs if spec.name not in evaluation.inputs]
    if missing:
        raise InvalidInput(f"the evaluation file lacks input(s) {', '.join(missing)} of the model")
    inputs = {spec.name: evaluation.inputs[spec.name] for spec in runtime.signature.inputs}
    outputs = runtime.predict(inputs)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        runtime.predict(inputs)
        timings.append((time.perf_counter() - started) * 1000)
    quality = score(outputs, runtime.signature.outputs[0].name, evaluation)
    return Measurement(quality=quality, latency_ms=statistics.median(timings))


def score(outputs: dict[str, np.ndarray], first_output: str, evaluation: EvaluationSet) -> float:
    """Accuracy in points (from `label`, else the argmax of the first output), or RMSE."""
    first = outputs[first_output]
    if evaluation.labels is not None:
        predicted = outputs["label"] if "label" in outputs else np.argmax(first, axis=-1)
        return float((np.asarray(predicted).ravel() == evaluation.labels.ravel()).mean() * 100)
    assert evaluation.targets is not None
    error = np.asarray(first, dtype=np.float64).ravel() - evaluation.targets.astype(np.float64).ravel()
    return float(np.sqrt(np.mean(error**2)))
