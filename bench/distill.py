"""Knowledge distillation on a model built from code: size, latency and accuracy, student/teacher.

The teacher is the 4 x 1,024 MLP of the digits (`digits-large`, 13 MB, the example's SageMaker
model); students are trained by `maas distill` on the teacher's answers to the 1,347 unlabeled
training rows and scored beside it on the 450 held-out digits with their labels. Latency is
the median of 5 runs on a 1,000-row batch (the held-out rows, repeated), both models measured
in the same run; ratios are student/teacher.

    .venv/bin/python bench/distill.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    from maas.distill import distill_model
    from maas.local.demo import build_large_digits_onnx, digits_split

    scratch = Path(tempfile.mkdtemp(prefix="maas-distill-"))
    train_x, test_x, _, test_y = digits_split()
    np.savez(scratch / "unlabeled.npz", input=train_x)
    np.savez(scratch / "eval.npz", input=np.resize(test_x, (1000, 64)), labels=np.resize(test_y, 1000))
    build_large_digits_onnx(scratch / "teacher.onnx")
    print(f"python {sys.version.split()[0]}; teacher: 4 x 1,024 MLP; latency: median of 5 runs on 1,000 rows")
    print(
        f"{'student':<34}{'size KB':>9}{'size ratio':>12}{'latency ratio':>15}"
        f"{'teacher acc':>13}{'student acc':>13}{'delta':>8}{'agreement':>11}"
    )
    students = [
        ("mlp", (64,), None),
        ("mlp", (32,), None),
        ("mlp", (64,), "int8-dynamic"),
        ("mlp", (128, 64), None),
        ("gbm", (), None),
    ]
    for kind, widths, quantize in students:
        report = distill_model(
            scratch / "teacher.onnx",
            scratch / "student.onnx",
            data=scratch / "unlabeled.npz",
            evaluation=scratch / "eval.npz",
            student=kind,
            widths=widths or (1,),
            quantize=quantize,
            max_drop=100,  # report, do not gate
        )
        print(
            f"{report.student:<34}{report.student_size / 1e3:>9.1f}{report.size_ratio:>12.4f}"
            f"{report.student_latency_ms / report.teacher_latency_ms:>15.4f}{report.teacher_quality:>13.2f}"
            f"{report.student_quality:>13.2f}{-report.quality_drop:>+8.2f}{report.agreement:>11.2f}"
        )


if __name__ == "__main__":
    main()
