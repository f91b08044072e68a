"""Evaluation and calibration files, and scoring a model on them.

An evaluation file is a NumPy `.npz` holding one array per model input (by input name)
and either `labels` (classification: accuracy in points) or `targets` (regression:
RMSE). A calibration file holds the input arrays only.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from maas.errors import InvalidInput

if TYPE_CHECKING:
    from pathlib import Path

    from maas.runtimes import Runtime

LABELS = "labels"
TARGETS = "targets"
# The label output of a classifier: skl2onnx names it `label`, or `output_label` with a ZipMap.
LABEL_OUTPUTS = ("label", "output_label")


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
    outputs: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)


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
    return Measurement(quality=quality, latency_ms=statistics.median(timings), outputs=outputs)


def scored_output(names: list[str], evaluation: EvaluationSet) -> str:
    """The output `score` judges: a classifier's label output if it has one, else the first."""
    if evaluation.labels is not None:
        return next((name for name in LABEL_OUTPUTS if name in names), names[0])
    return names[0]


def score(outputs: dict[str, np.ndarray], first_output: str, evaluation: EvaluationSet) -> float:
    """Accuracy in points (of the label output, or a one-dimensional first output, else of the
    first output's argmax), or RMSE of the first output."""
    names = [first_output, *(name for name in outputs if name != first_output)]
    judged = np.asarray(outputs[scored_output(names, evaluation)])
    if evaluation.labels is not None:
        predicted = judged if judged.ndim == 1 else np.argmax(judged, axis=-1)
        return float((predicted.ravel() == evaluation.labels.ravel()).mean() * 100)
    assert evaluation.targets is not None
    error = judged.astype(np.float64).ravel() - evaluation.targets.astype(np.float64).ravel()
    return float(np.sqrt(np.mean(error**2)))


def largest_changes(
    before: dict[str, np.ndarray], after: dict[str, np.ndarray], *, scored: str
) -> dict[str, float]:
    """For each float output but the scored one (a classifier's probabilities), the largest
    absolute difference between two models' answers on the same rows."""
    changes = {}
    for name, old in before.items():
        new = after.get(name)
        if name == scored or new is None or old.dtype.kind != "f" or old.shape != new.shape or not old.size:
            continue
        changes[name] = float(np.max(np.abs(old.astype(np.float64) - new.astype(np.float64))))
    return changes
