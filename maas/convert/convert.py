"""`maas convert`: a trained model, in its framework's saved form, to a file maas serves.

Every conversion is verified: the original (by its framework) and the converted file (by the
runtime maas serves it with, in a process of its own) answer the same rows, and the file is
written only if they agree.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from maas.convert.exceptions import ConversionMismatch
from maas.convert.loading import open_source
from maas.convert.process import in_own_process, uses_tensorflow
from maas.convert.report import ConversionReport
from maas.convert.samples import GENERATED_ROWS, check_sample, generated_rows, read_sample
from maas.convert.source import ConversionOptions
from maas.convert.tensorflow_models import refuse_before_tensorflow
from maas.convert.verify import check_output, pair_outputs
from maas.errors import InvalidInput

TARGETS = (".onnx", ".tflite")
TOLERANCE = 1e-4
# Full-integer int8 rounds every activation to 1 of 256 levels: probabilities move by some hundredths.
INT8_TOLERANCE = 0.1
# Converted models are run in a child process; large ones take a while to load.
RUN_TIMEOUT_SECONDS = 120.0


def convert_model(
    source: str | Path,
    output: Path,
    *,
    sample: Path | None = None,
    tolerance: float | None = None,
    trust_pickle: bool = False,
    calibration: Path | None = None,
    converter_options: dict[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> ConversionReport:
    """Convert `source` to `output` (.onnx or .tflite), verified on the rows of `sample` (else
    rows made from its inputs). Labels must be equal and real outputs within `tolerance`
    (default 1e-4, 0.1 for int8). `calibration` (.npz of input rows) makes a TFLite model
    full-integer int8. Raises UntrustedPickle, UnsupportedSource or InvalidInput for what
    cannot be converted, and ConversionMismatch, with both answers, when the converted model
    disagrees; nothing is written then."""
    if output.suffix not in TARGETS:
        raise InvalidInput(f"the output must end in {' or '.join(TARGETS)}, got '{output.name}'")
    if tolerance is not None and not tolerance >= 0:
        raise InvalidInput(f"the tolerance must be a number of at least 0, got {tolerance}")
    if calibration is not None and output.suffix != ".tflite":
        raise InvalidInput("--int8 makes a full-integer int8 TFLite model: write -o MODEL.tflite")
    arguments = {
        "sample": sample, "tolerance": tolerance, "trust_pickle": trust_pickle, "calibration": calibration,
        "converter_options": converter_options, "input_shape": input_shape,
    }  # fmt: skip
    if uses_tensorflow(source):
        refuse_before_tensorflow(Path(source), output)
        report: ConversionReport = in_own_process(_convert, source, output, arguments)
        return report
    return _convert(source, output, arguments)


def _convert(source: str | Path, output: Path, arguments: dict[str, Any]) -> ConversionReport:
    # Module-level, of plain arguments: what a spawned process can be handed.
    return _convert_loaded(source, output, **arguments)


def _convert_loaded(
    source: str | Path,
    output: Path,
    *,
    sample: Path | None,
    tolerance: float | None,
    trust_pickle: bool,
    calibration: Path | None,
    converter_options: dict[str, Any] | None,
    input_shape: tuple[int, ...] | None,
) -> ConversionReport:
    model = open_source(source, trust_pickle=trust_pickle)
    model.refuse_target(output)
    if input_shape is not None and model.framework != "pytorch":
        raise InvalidInput(
            "--input-shape is a PyTorch factory's example input; give other models rows with --sample"
        )
    options = ConversionOptions(
        calibration=_calibration(calibration),
        converter_options=dict(converter_options or {}),
    )
    arrays = read_sample(sample) if sample is not None else _shaped_rows(input_shape)
    specs = model.input_specs(arrays)
    inputs = (
        check_sample(arrays, specs, sample or "--input-shape")
        if arrays is not None
        else generated_rows(specs)
    )
    try:
        expected = model.predict(inputs)
    except Exception as error:  # the framework's own refusal of rows that do not fit the model
        raise InvalidInput(
            f"{model.framework} cannot answer the sample rows ({type(error).__name__}: {error}); "
            "give rows the model was made for with --sample FILE"
        ) from None
    allowed = tolerance if tolerance is not None else INT8_TOLERANCE if options.int8 else TOLERANCE
    with tempfile.TemporaryDirectory() as scratch:
        candidate = Path(scratch) / f"model{output.suffix}"
        model.convert(candidate, specs, options)
        report = _verify(
            model,
            source=source,
            candidate=candidate,
            output=output,
            inputs=inputs,
            expected=expected,
            tolerance=allowed,
            int8=options.int8,
        )
        if not report.agrees:
            raise ConversionMismatch(
                f"the converted model disagrees with the original on the sample rows; nothing was written.\n"
                f"{report.summary()}\n{report.disagreement()}"
            )
        write_whole(candidate, output)
    return report


def write_whole(source: Path, output: Path) -> None:
    """Copy `source` to `output` so that `output` is the old file or the new one, never a part."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    shutil.copyfile(source, partial)
    partial.replace(output)


def _verify(
    model: Any,
    *,
    source: str | Path,
    candidate: Path,
    output: Path,
    inputs: dict[str, np.ndarray],
    expected: dict[str, np.ndarray],
    tolerance: float,
    int8: bool,
) -> ConversionReport:
    from maas.runtimes.probe import predict_in_child

    signature, answered = predict_in_child(candidate, _served(inputs), timeout=RUN_TIMEOUT_SECONDS)
    order = [spec.name for spec in signature.outputs]
    checks = tuple(
        check_output(name, original, converted, tolerance=tolerance)
        for name, original, converted in pair_outputs(expected, answered, order)
    )
    path = Path(str(source))
    return ConversionReport(
        source=path.name if path.exists() else str(source),
        framework=model.framework,
        description=model.describe(),
        versions=model.versions(),
        output=output,
        source_size=_size(path),
        converted_size=candidate.stat().st_size,
        signature=signature,
        checks=checks,
        rows=len(next(iter(inputs.values()))),
        tolerance=tolerance,
        int8=int8,
    )


def _served(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The rows as maas's runtimes receive them from a request: text as UTF-8 bytes."""
    served = {}
    for name, array in inputs.items():
        if array.dtype.kind in "OSU":
            served[name] = np.array([str(value).encode() for value in array.ravel()], dtype=object).reshape(
                array.shape
            )
        else:
            served[name] = array
    return served


def _shaped_rows(input_shape: tuple[int, ...] | None) -> dict[str, np.ndarray] | None:
    if input_shape is None:
        return None
    if not input_shape or any(dim < 1 for dim in input_shape):
        raise InvalidInput(
            f"--input-shape needs positive sizes, rows first (like 1,64), got {list(input_shape)}"
        )
    generator = np.random.default_rng(0)
    return {"input": generator.standard_normal((GENERATED_ROWS, *input_shape[1:])).astype(np.float32)}


def _calibration(path: Path | None) -> dict[str, np.ndarray] | None:
    if path is None:
        return None
    from maas.optimize.evaluation import load_calibration

    return load_calibration(path)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    return 0
