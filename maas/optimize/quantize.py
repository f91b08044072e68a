"""`maas optimize`: pruning, graph optimization, int8 quantization and ORT format, behind a
quality gate.

The original and the result are scored on the same evaluation file; the result is
written only if its quality is no worse than the allowed drop, if the quantizer rewrote
some of its weights (int8 modes), and if it is no bigger than the original unless allowed.
Pruning (`prune`: the share of hidden units removed) runs first, before any other mode.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.errors import ArtifactError, InvalidInput, MaasError, QualityGateFailed
from maas.optimize.evaluation import (
    largest_changes,
    load_calibration,
    load_evaluation,
    measure,
    scored_output,
)
from maas.optimize.exceptions import LargerThanInput, NotQuantizable
from maas.optimize.operators import (
    quantized_anything,
    read_graph,
    refuse_non_tensor_outputs,
    refuse_unquantizable,
)
from maas.optimize.prune import prune_model
from maas.optimize.report import Mode, OptimizationReport
from maas.runtimes import load_runtime

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

    from maas.optimize.evaluation import EvaluationSet, Measurement

CALIBRATION_BATCH = 32


def optimize_model(
    source: Path,
    output: Path,
    *,
    mode: Mode | str,
    evaluation: Path,
    calibration: Path | None = None,
    max_drop: float = 1.0,
    ort_format: bool = False,
    allow_larger: bool = False,
    prune: float | None = None,
) -> OptimizationReport:
    """Optimize the ONNX model at `source` into `output` if quality holds.

    `max_drop` is in accuracy points for classifiers (`labels` in the evaluation file),
    or percent of RMSE for regressors (`targets`). Raises InvalidInput for unusable
    arguments and for outputs that are not tensors (skl2onnx's ZipMap), NotQuantizable
    when an int8 mode can rewrite none of the model's weights (ai.onnx.ml operators),
    QualityGateFailed, with both scores, when the result is worse than allowed, and
    LargerThanInput, with both sizes, when it is bigger and `allow_larger` is not set.
    `prune` removes that share of every hidden dense layer's units first (mode `prune`: only
    that); NotPrunable when the graph has no layer it can prune safely.
    """
    mode = _mode(mode)
    if mode is Mode.PRUNE and prune is None:
        raise InvalidInput("mode prune needs the share of hidden units to remove (--prune RATIO, e.g. 0.5)")
    if source.suffix != ".onnx":
        raise InvalidInput(f"maas optimize takes an ONNX model (.onnx), got '{source.name}'")
    wanted_suffix = ".ort" if ort_format else ".onnx"
    if output.suffix != wanted_suffix:
        raise InvalidInput(f"the output must end in {wanted_suffix}, got '{output.name}'")
    if mode is Mode.STATIC and calibration is None:
        raise InvalidInput("int8-static quantization needs a calibration file (--calibration)")
    evaluation_set = load_evaluation(evaluation)
    graph, size = read_graph(source), source.stat().st_size
    kept_float: tuple[str, ...] = ()
    if mode not in (Mode.GRAPH, Mode.PRUNE):
        kept_float = refuse_unquantizable(graph, mode=mode, name=source.name, size=size).kept_float
    refuse_non_tensor_outputs(graph, name=source.name)
    runtime = load_runtime(source)
    original = measure(runtime, evaluation_set)
    input_names = [spec.name for spec in runtime.signature.inputs]
    with tempfile.TemporaryDirectory() as scratch:
        start, pruned = source, tuple[str, ...]()
        if prune is not None:
            start = Path(scratch) / "pruned.onnx"
            pruned = tuple(layer.note() for layer in prune_model(source, start, ratio=prune))
        try:
            candidate = (
                start
                if mode is Mode.PRUNE
                else _transform(start, Path(scratch), mode, calibration, input_names)
            )
        except MaasError:
            raise
        except Exception as error:  # ONNX Runtime's quantizer raises untyped errors
            raise ArtifactError(f"{mode} of '{source.name}' failed: {error}") from error
        if mode not in (Mode.GRAPH, Mode.PRUNE) and not quantized_anything(graph, read_graph(candidate)):
            raise NotQuantizable(
                f"{mode} left every weight of '{source.name}' in float (the quantizer found nothing it "
                "could rewrite); nothing was written"
            )
        if ort_format:
            candidate = _to_ort_format(candidate, Path(scratch) / "model.ort")
        report = _report(
            mode,
            evaluation_set,
            original,
            candidate,
            original_size=size,
            output=output,
            kept_float=kept_float,
            pruned=pruned,
        )
        _refuse_worse(report, max_drop=max_drop, allow_larger=allow_larger, name=source.name)
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(candidate, output)
    return report


def _report(
    mode: Mode,
    evaluation: EvaluationSet,
    original: Measurement,
    candidate: Path,
    *,
    original_size: int,
    output: Path,
    kept_float: tuple[str, ...],
    pruned: tuple[str, ...] = (),
) -> OptimizationReport:
    runtime = load_runtime(candidate)
    optimized = measure(runtime, evaluation)
    scored = scored_output([spec.name for spec in runtime.signature.outputs], evaluation)
    return OptimizationReport(
        mode=mode,
        metric=evaluation.metric,
        original=original,
        optimized=optimized,
        original_size=original_size,
        optimized_size=candidate.stat().st_size,
        output=output,
        scored_output=scored,
        kept_float=kept_float,
        output_changes=largest_changes(original.outputs, optimized.outputs, scored=scored),
        pruned=pruned,
    )


def _refuse_worse(report: OptimizationReport, *, max_drop: float, allow_larger: bool, name: str) -> None:
    if report.quality_drop > max_drop:
        unit = "points" if report.metric == "accuracy" else "% RMSE"
        raise QualityGateFailed(
            f"{report.mode} made {report.metric} {report.original.quality:.2f} -> {report.optimized.quality:.2f} "
            f"(worse by {report.quality_drop:.2f} {unit}, allowed {max_drop}); nothing was written"
        )
    if report.optimized_size > report.original_size and not allow_larger:
        raise LargerThanInput(
            f"{report.mode} made '{name}' larger: {report.size_change()}; nothing was written "
            "(`maas optimize --allow-larger` writes it anyway)"
        )


def _mode(mode: Mode | str) -> Mode:
    try:
        return Mode(mode)
    except ValueError:
        raise InvalidInput(f"mode '{mode}' is not one of: {', '.join(m.value for m in Mode)}") from None


def _transform(
    source: Path, scratch: Path, mode: Mode, calibration: Path | None, input_names: list[str]
) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    target = scratch / "model.onnx"
    if mode is Mode.GRAPH:
        return _graph_optimized(source, target)
    with quiet_quantizer():
        if mode is Mode.DYNAMIC:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
            return target
        assert calibration is not None
        batches = _calibration_batches(load_calibration(calibration), input_names, calibration)

        class Reader(CalibrationDataReader):  # type: ignore[misc]
            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(batches, None)

        quantize_static(
            source,
            target,
            Reader(),
            quant_format=QuantFormat.QDQ,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QInt8,
        )
    return target


def _calibration_batches(
    arrays: dict[str, np.ndarray], input_names: list[str], path: Path
) -> Iterator[dict[str, np.ndarray]]:
    missing = [name for name in input_names if name not in arrays]
    if missing:
        raise InvalidInput(f"calibration file {path} lacks input(s) {', '.join(missing)} of the model")
    # Other arrays (labels, say) are not model inputs: the calibrator must not see them.
    arrays = {name: arrays[name] for name in input_names}
    rows = min(len(array) for array in arrays.values())
    for start in range(0, rows, CALIBRATION_BATCH):
        yield {name: array[start : start + CALIBRATION_BATCH] for name, array in arrays.items()}


def _graph_optimized(source: Path, target: Path) -> Path:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Extended, not "all": layout-specific rewrites would tie the file to this machine's CPU.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return target


def _to_ort_format(source: Path, target: Path) -> Path:
    """ORT format: a flatbuffer ONNX Runtime loads without parsing protobuf (smaller, faster to load)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    options.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return target


@contextlib.contextmanager
def quiet_quantizer() -> Iterator[Any]:
    # The quantizer logs advice on the root logger at INFO and WARNING; it is not for our users.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
