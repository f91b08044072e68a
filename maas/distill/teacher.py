"""What a teacher model answers, read as a distillation target: a classifier's probabilities
and labels, or a regressor's values, by the teacher's own output names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from maas.errors import InvalidInput
from maas.protocol.datatypes import NUMPY_DTYPES

if TYPE_CHECKING:
    from maas.runtimes import Runtime


@dataclass(frozen=True)
class TeacherTask:
    """How the teacher's outputs read: `probabilities` and `label` name a classifier's outputs
    (either may be missing), `values` a regressor's; `classes[k]` is the label of column k."""

    input_name: str
    features: int
    probabilities: str | None = None
    label: str | None = None
    label_dtype: np.dtype | None = None
    classes: tuple[int, ...] = ()
    values: tuple[str, ...] = ()

    @property
    def classifier(self) -> bool:
        return self.probabilities is not None or self.label is not None

    def labels_of(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The class each row is given, from the label output or the probabilities' argmax."""
        if self.label is not None:
            return np.asarray(outputs[self.label]).reshape(-1)
        assert self.probabilities is not None
        labels: np.ndarray = np.asarray(self.classes)[np.argmax(outputs[self.probabilities], axis=1)]
        return labels


def check_teacher(runtime: Runtime) -> None:
    """Raises InvalidInput unless the teacher takes one input of real-valued rows [N, F]."""
    inputs = runtime.signature.inputs
    if len(inputs) != 1 or len(inputs[0].shape) != 2 or inputs[0].shape[1] < 1:
        shapes = ", ".join(f"{spec.name} {list(spec.shape)}" for spec in inputs)
        raise InvalidInput(
            f"maas distill takes a teacher with one input of rows of features [N, F]; this one takes {shapes}"
        )
    spec = inputs[0]
    if NUMPY_DTYPES[spec.datatype].kind != "f":
        raise InvalidInput(
            f"maas distill takes a teacher with a real-valued input; '{spec.name}' is {spec.datatype}"
        )


def read_task(runtime: Runtime, outputs: dict[str, np.ndarray]) -> TeacherTask:
    """The teacher's task, from its signature and its answers on the training rows; raises
    InvalidInput for a teacher a dense student cannot stand in for."""
    check_teacher(runtime)
    spec = runtime.signature.inputs[0]
    probabilities = label = None
    values = []
    for output in runtime.signature.outputs:
        answer = np.asarray(outputs[output.name])
        if answer.dtype.kind in "iu" and answer.size == len(answer) and label is None:
            label = output.name
        elif answer.dtype.kind == "f" and answer.ndim == 2 and answer.shape[1] > 1 and _sums_to_one(answer):
            probabilities = probabilities or output.name
        elif answer.dtype.kind == "f":
            values.append(output.name)
        else:
            raise InvalidInput(
                f"teacher output '{output.name}' ({output.datatype}) is neither labels, probabilities nor values"
            )
    if probabilities is None and label is None:
        return TeacherTask(spec.name, int(spec.shape[1]), values=tuple(values))
    classes: tuple[int, ...] = tuple(int(c) for c in np.unique(np.asarray(outputs[label]))) if label else ()
    if probabilities is not None:
        columns = np.argmax(outputs[probabilities], axis=1)
        given = np.asarray(outputs[label]).reshape(-1) if label is not None else columns
        classes = tuple(_label_of_column(given, columns, k) for k in range(outputs[probabilities].shape[1]))
    return TeacherTask(
        spec.name,
        int(spec.shape[1]),
        probabilities=probabilities,
        label=label,
        label_dtype=np.asarray(outputs[label]).dtype if label is not None else None,
        classes=classes,
    )


def _sums_to_one(answer: np.ndarray) -> bool:
    # An int8 model's probabilities come in steps of 1/256: their sum is near 1, not at it.
    return bool((answer >= -1e-6).all() and np.allclose(answer.sum(axis=1), 1.0, atol=0.05))


def _label_of_column(labels: np.ndarray, columns: np.ndarray, column: int) -> int:
    """The label the teacher gives rows whose most probable column is `column` (skl2onnx maps
    columns to its `classes_`); the column's index where no row has it first."""
    chosen = labels[columns == column]
    if not chosen.size:
        return column
    values, counts = np.unique(chosen, return_counts=True)
    return int(values[np.argmax(counts)])
