"""`maas distill TEACHER -o STUDENT.onnx --data FILE`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maas.cli.common import FAILED, UNEXPECTED, HelpFormatter, exit_codes


def add_distill_command(commands: Any) -> None:
    distill = commands.add_parser(
        "distill",
        help="train a small student of a large model on its answers, refusing it if quality drops",
        epilog=exit_codes(
            "0  written", UNEXPECTED, FAILED + ",\nor the student falls short (both scores are printed)"
        ),
        formatter_class=HelpFormatter,
    )
    distill.add_argument(
        "teacher", type=Path, help="the model to learn from: .onnx or .tflite, one input [N, F]"
    )
    distill.add_argument("--output", "-o", type=Path, required=True, help="the student to write (.onnx)")
    distill.add_argument(
        "--data",
        type=Path,
        required=True,
        help=".npz: rows of the teacher's input (unlabeled), optionally `labels` or `targets` to score on",
    )
    distill.add_argument(
        "--eval",
        dest="evaluation",
        type=Path,
        help=".npz to score on instead of a held-out fifth of --data (input rows, optionally labels or targets)",
    )
    distill.add_argument(
        "--student", default="mlp", choices=["mlp", "gbm"], help="an MLP or LightGBM (default: %(default)s)"
    )
    distill.add_argument(
        "--widths", type=_widths, default=(64,), help="the MLP's hidden widths, like 128,64 (default: 64)"
    )
    distill.add_argument(
        "--epochs", type=int, default=60, help="the MLP's training epochs (default: %(default)s)"
    )
    distill.add_argument(
        "--quantize",
        choices=["int8-dynamic", "int8-static"],
        help="quantize the student (as maas optimize does)",
    )
    distill.add_argument(
        "--max-drop",
        type=float,
        default=1.0,
        help="allowed loss: accuracy points (or %% RMSE) against the labels, else points of agreement "
        "with the teacher (default: %(default)s)",
    )
    distill.set_defaults(run=_distill)


def _distill(args: argparse.Namespace) -> int:
    from maas.distill import distill_model

    report = distill_model(
        args.teacher,
        args.output,
        data=args.data,
        student=args.student,
        widths=args.widths,
        epochs=args.epochs,
        quantize=args.quantize,
        max_drop=args.max_drop,
        evaluation=args.evaluation,
    )
    print(report.summary())
    print(
        f"wrote {args.output}: {report.teacher_size:,} -> {report.student_size:,} bytes ({report.size_ratio:.3f}x)"
    )
    return 0


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is no list of widths, like 128,64") from None
    if not widths or any(width < 1 for width in widths):
        raise argparse.ArgumentTypeError(f"{text!r} needs widths of at least 1, like 128,64")
    return widths
