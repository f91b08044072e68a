"""`maas convert SOURCE -o OUT.onnx|OUT.tflite`, and the `--convert SOURCE` of `maas models register`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.cli.common import FAILED, UNEXPECTED, HelpFormatter, exit_codes
from maas.errors import InvalidInput

if TYPE_CHECKING:
    from maas.convert import ConversionReport

SOURCES = (
    "a scikit-learn, XGBoost or LightGBM pickle (.pkl, .joblib: with --trust-pickle), XGBoost .json/.ubj, "
    "LightGBM .txt, Keras .keras, a TensorFlow SavedModel directory, a PyTorch .pt2 (torch.export.save) "
    "or package.module:factory"
)


def add_convert_command(commands: Any) -> None:
    convert = commands.add_parser(
        "convert",
        help="convert a trained model to ONNX or TFLite, verified against the framework's own answers",
        epilog=exit_codes(
            "0  converted, verified and written",
            UNEXPECTED,
            FAILED + ",\nor the converted model disagrees with the original (both answers are printed)",
        ),
        formatter_class=HelpFormatter,
    )
    convert.add_argument("source", help=f"the trained model: {SOURCES}")
    convert.add_argument(
        "--output", "-o", type=Path, required=True, help="the file to write: .onnx or .tflite"
    )
    add_conversion_arguments(convert)
    convert.set_defaults(run=_convert)


def add_conversion_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a conversion, shared by `maas convert` and `maas models register --convert`."""
    parser.add_argument(
        "--sample",
        type=Path,
        help="rows to verify on: .npz, one array per input (strings as text), or .npy "
        "(default: 64 rows made from the inputs; needed for text inputs)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="largest difference allowed in real outputs, absolute or relative (default: 1e-4, 0.1 with --int8); "
        "labels must be equal",
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load a .pkl or .joblib file: unpickling runs any code its author put in it, so only for files you trust",
    )
    parser.add_argument(
        "--int8",
        dest="int8_calibration",
        type=Path,
        metavar="CALIBRATION",
        help="TFLite only: full-integer int8, calibrated on the rows of this .npz (one array per input)",
    )
    parser.add_argument(
        "--input-shape",
        type=_shape,
        help="PyTorch module:factory only: the example input's shape, rows first (1,64), FP32",
    )
    parser.add_argument(
        "--converter-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="scikit-learn only: an skl2onnx option of the final estimator (repeatable), e.g. nocl=true",
    )


def convert_from_args(args: argparse.Namespace, source: str, output: Path) -> ConversionReport:
    """Convert as the command line asks; raises what `convert_model` raises."""
    from maas.convert import convert_model

    return convert_model(
        source,
        output,
        sample=args.sample,
        tolerance=args.tolerance,
        trust_pickle=args.trust_pickle,
        calibration=args.int8_calibration,
        converter_options=_options(args.converter_option),
        input_shape=args.input_shape,
    )


def convert_for_register(args: argparse.Namespace, scratch: Path) -> tuple[Path, dict[str, str]]:
    """`register --convert SOURCE`: the converted file (in `scratch`) and the labels that record
    where it came from; the report goes to stderr."""
    suffix = ".tflite" if args.int8_calibration is not None or args.to == "tflite" else ".onnx"
    if args.to is None and args.int8_calibration is None and _is_tensorflow(args.convert):
        suffix = ".tflite"  # Keras and SavedModels convert to TFLite only
    report = convert_from_args(args, args.convert, scratch / f"model{suffix}")
    print(report.summary(), file=sys.stderr)
    return scratch / f"model{suffix}", report.labels()


def _convert(args: argparse.Namespace) -> int:
    report = convert_from_args(args, args.source, args.output)
    print(report.summary())
    print(f"wrote {args.output}")
    return 0


def _is_tensorflow(source: str) -> bool:
    path = Path(source)
    return path.suffix == ".keras" or (path / "saved_model.pb").is_file()


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is no shape: sizes separated by commas, like 1,64"
        ) from None
    if not shape or any(size < 1 for size in shape):
        raise argparse.ArgumentTypeError(f"{text!r} needs sizes of at least 1, like 1,64")
    return shape


def _options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"converter option '{pair}' must look like KEY=VALUE")
        options[key] = _value(value)
    return options


def _value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
