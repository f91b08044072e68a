"""`maas distill`: a small student trained on a large teacher's answers, behind a quality gate.

The teacher (any model maas serves: ONNX or TFLite) answers unlabeled rows; a student (an MLP
of chosen widths, or a gradient-boosted model) learns those answers, is written as ONNX with
the teacher's input and output names, optionally quantized, and is scored beside the teacher
on held-out rows: how often it agrees with the teacher, and, where the rows have labels or
targets, their accuracy or RMSE. It is written only if quality stays within `max_drop`:
accuracy (or RMSE) against the labels where given, else agreement with the teacher.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from maas.convert.convert import write_whole
from maas.distill.report import DistillReport
from maas.distill.students import train_gbm
from maas.distill.teacher import TeacherTask, check_teacher, read_task
from maas.errors import InvalidInput, QualityGateFailed
from maas.optimize.evaluation import LABELS, TARGETS, EvaluationSet, load_arrays, measure
from maas.runtimes import load_runtime

if TYPE_CHECKING:
    from maas.runtimes import Runtime

STUDENTS = ("mlp", "gbm")
HELD_OUT = 0.2
MIN_ROWS = 20
PREDICT_ROWS = 1024  # the teacher answers the rows in chunks, so memory stays bounded
SEED = 0


def distill_model(
    teacher: Path,
    output: Path,
    *,
    data: Path,
    student: str = "mlp",
    widths: tuple[int, ...] = (64,),
    epochs: int = 60,
    quantize: str | None = None,
    max_drop: float = 1.0,
    evaluation: Path | None = None,
) -> DistillReport:
    """Train a student of `teacher` on the rows of `data` (.npz: the teacher's input, and
    optionally `labels` or `targets`, which are never trained on) and write it to `output`
    (.onnx) if its agreement with the teacher, and its accuracy or RMSE where the data has
    labels or targets, are within `max_drop` of the teacher's on held-out rows (a fifth of
    `data`, or the rows of `evaluation`): with labels, the student's accuracy (or RMSE) must be
    within `max_drop` points (percent) of the teacher's; without, its agreement with the
    teacher within `max_drop` points of 100%. Raises InvalidInput for unusable arguments and
    QualityGateFailed, with both scores, when the student falls short; nothing is written then."""
    if output.suffix != ".onnx":
        raise InvalidInput(
            f"the student is written as ONNX: the output must end in .onnx, got '{output.name}'"
        )
    if student not in STUDENTS:
        raise InvalidInput(f"student '{student}' is not one of: {', '.join(STUDENTS)}")
    if not widths or any(width < 1 for width in widths) or epochs < 1:
        raise InvalidInput("an mlp student needs widths of at least 1 unit and at least 1 epoch")
    runtime = load_runtime(teacher)
    check_teacher(runtime)
    input_name, features = runtime.signature.inputs[0].name, runtime.signature.inputs[0].shape[1]
    rows, truth = _rows(data, input_name, features)
    if evaluation is not None:
        train_rows, scored_rows = (rows, truth), _rows(evaluation, input_name, features)
    else:
        train_rows, scored_rows = _split(rows, truth)
    train_answers = _answers(runtime, input_name, train_rows[0])
    task = read_task(runtime, train_answers)
    output_names = [spec.name for spec in runtime.signature.outputs]
    with tempfile.TemporaryDirectory() as scratch:
        candidate = Path(scratch) / "student.onnx"
        described = _train(
            task,
            rows=train_rows[0],
            answers=train_answers,
            output_names=output_names,
            target=candidate,
            student=student,
            widths=widths,
            epochs=epochs,
        )
        if quantize is not None:
            candidate = _quantized(
                candidate,
                scratch=Path(scratch),
                mode=quantize,
                task=task,
                teacher=runtime,
                scored=scored_rows[0],
                train=train_rows[0],
            )
            described += f", {quantize}"
        sizes = (teacher.stat().st_size, candidate.stat().st_size)
        measured = _score(runtime, load_runtime(candidate), task, scored_rows, sizes=sizes)
        report = replace(measured, student=described, rows_trained=len(train_rows[0]), output=output)
        _refuse_worse(report, max_drop=max_drop)
        write_whole(candidate, output)
    return report


def _rows(path: Path, input_name: str, features: int) -> tuple[np.ndarray, np.ndarray | None]:
    arrays = load_arrays(path, kind="data")
    truth = arrays.pop(LABELS, None)
    if truth is None:
        truth = arrays.pop(TARGETS, None)
    rows = arrays.get(input_name, next(iter(arrays.values())) if len(arrays) == 1 else None)
    if rows is None:
        raise InvalidInput(
            f"data file {path} lacks the teacher's input '{input_name}' (it holds {', '.join(arrays)})"
        )
    if rows.ndim != 2 or rows.dtype.kind not in "fiu" or len(rows) < MIN_ROWS:
        raise InvalidInput(
            f"data file {path}: '{input_name}' must be at least {MIN_ROWS} rows of numbers [N, F]"
        )
    if features > 0 and rows.shape[1] != features:
        raise InvalidInput(
            f"data file {path}: '{input_name}' has {rows.shape[1]} features per row, the teacher takes {features}"
        )
    if not np.isfinite(rows).all():
        raise InvalidInput(f"data file {path}: '{input_name}' holds NaN or infinite values")
    if truth is not None and len(truth) != len(rows):
        raise InvalidInput(f"data file {path}: {len(truth)} labels or targets for {len(rows)} rows")
    return rows.astype(np.float32), truth


def _split(
    rows: np.ndarray, truth: np.ndarray | None
) -> tuple[tuple[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray | None]]:
    order = np.random.default_rng(SEED).permutation(len(rows))
    held = order[: max(1, int(len(rows) * HELD_OUT))]
    kept = order[len(held) :]
    pick = (lambda index: None) if truth is None else (lambda index: truth[index])
    return (rows[kept], pick(kept)), (rows[held], pick(held))


def _answers(runtime: Runtime, input_name: str, rows: np.ndarray) -> dict[str, np.ndarray]:
    chunks = [
        runtime.predict({input_name: rows[start : start + PREDICT_ROWS]})
        for start in range(0, len(rows), PREDICT_ROWS)
    ]
    return {name: np.concatenate([np.asarray(chunk[name]) for chunk in chunks]) for name in chunks[0]}


def _train(
    task: TeacherTask,
    *,
    rows: np.ndarray,
    answers: dict[str, np.ndarray],
    output_names: list[str],
    target: Path,
    student: str,
    widths: tuple[int, ...],
    epochs: int,
) -> str:
    if student == "gbm":
        train_gbm(task, rows, answers, output_names, target)
        return (
            "gbm (LightGBM, 100 trees of 15 leaves)"
            if task.classifier
            else "gbm (LightGBM, 200 trees of 15 leaves)"
        )
    from maas.distill.students import export_mlp, train_mlp

    module = train_mlp(task, rows, answers, output_names, widths=widths, epochs=epochs)
    export_mlp(module, task, output_names, target)
    return f"mlp {' x '.join(map(str, widths))} ({epochs} epochs)"


def _quantized(
    candidate: Path,
    *,
    scratch: Path,
    mode: str,
    task: TeacherTask,
    teacher: Runtime,
    scored: np.ndarray,
    train: np.ndarray,
) -> Path:
    """The student quantized by `maas optimize` (its own gate opened: distill's gate judges)."""
    from maas.optimize import optimize_model

    input_name = task.input_name
    answers = _answers(teacher, input_name, scored)
    if task.classifier:
        np.savez(scratch / "eval.npz", **{input_name: scored, LABELS: task.labels_of(answers)})
    else:
        np.savez(scratch / "eval.npz", **{input_name: scored, TARGETS: answers[task.values[0]]})
    np.savez(scratch / "calibration.npz", **{input_name: train[:300]})
    quantized = scratch / "student-int8.onnx"
    optimize_model(
        candidate, quantized, mode=mode, evaluation=scratch / "eval.npz", calibration=scratch / "calibration.npz",
        max_drop=float("inf"), allow_larger=True,
    )  # fmt: skip
    return quantized


def _score(
    teacher: Runtime,
    student: Runtime,
    task: TeacherTask,
    scored: tuple[np.ndarray, np.ndarray | None],
    *,
    sizes: tuple[int, int],
) -> DistillReport:
    """Both models on the held-out rows: latency, agreement, and quality against the truth."""
    rows, truth = scored
    inputs = {task.input_name: rows}
    reference = _answers(teacher, task.input_name, rows)
    if task.classifier:
        evaluation = EvaluationSet(inputs, labels=truth if truth is not None else task.labels_of(reference))
    else:
        evaluation = EvaluationSet(inputs, targets=truth if truth is not None else reference[task.values[0]])
    before, after = measure(teacher, evaluation), measure(student, evaluation)
    if task.classifier:
        agreement = float((task.labels_of(after.outputs) == task.labels_of(reference)).mean() * 100)
    else:
        old = np.hstack(
            [np.asarray(reference[name], np.float64).reshape(len(rows), -1) for name in task.values]
        )
        new = np.hstack(
            [np.asarray(after.outputs[name], np.float64).reshape(len(rows), -1) for name in task.values]
        )
        agreement = float(np.sqrt(np.mean((new - old) ** 2)) / (old.std() or 1e-12) * 100)
    measured = truth is not None
    return DistillReport(
        student="",
        teacher_size=sizes[0],
        student_size=sizes[1],
        teacher_latency_ms=before.latency_ms,
        student_latency_ms=after.latency_ms,
        rows_trained=0,
        rows_scored=len(rows),
        classifier=task.classifier,
        agreement=agreement,
        metric=evaluation.metric if measured else "",
        teacher_quality=before.quality if measured else float("nan"),
        student_quality=after.quality if measured else float("nan"),
    )


def _refuse_worse(report: DistillReport, *, max_drop: float) -> None:
    """With labels or targets, the student must score within `max_drop` of the teacher; without
    them, agreeing with the teacher is the only measure of quality it has, and must be within
    `max_drop` of total agreement (a regressor: within `max_drop` percent of the teacher's spread)."""
    problems = []
    if not report.metric and report.agreement_drop > max_drop:
        what = "agrees with the teacher on" if report.classifier else "is off the teacher by"
        problems.append(
            f"it {what} {report.agreement:.2f}% {'of rows' if report.classifier else 'of its spread'}"
        )
    if report.quality_drop > max_drop:
        unit = "points" if report.metric == "accuracy" else "% RMSE"
        problems.append(
            f"{report.metric} {report.teacher_quality:.2f} -> {report.student_quality:.2f} (worse by "
            f"{report.quality_drop:.2f} {unit})"
        )
    if problems:
        raise QualityGateFailed(
            f"the student falls short of the teacher: {'; '.join(problems)}, allowed {max_drop}; nothing was written\n"
            f"{report.table()}"
        )
