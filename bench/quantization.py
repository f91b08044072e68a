"""Quantization on two models built from code: size, latency and quality, original vs int8.

- digits: the demo MLP (64 -> 64 -> 10) on scikit-learn's 8x8 digits;
- wide MLP: 4 hidden layers of width 1,024 on the same task (about 4.3 M weights), where
  int8 weights and kernels matter far more than on a tiny model.
Both are scored on the held-out digits. Ratios are optimized/original in the same run.

    .venv/bin/python bench/quantization.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    from maas.local.demo import build_digits_onnx, build_large_digits_onnx, digits_split
    from maas.optimize import optimize_model

    scratch = Path(tempfile.mkdtemp(prefix="maas-quant-"))
    train_x, test_x, _, test_y = digits_split()
    # Latency is measured on a 1,000-row batch: the held-out rows, repeated.
    rows = np.resize(test_x, (1000, 64))
    labels = np.resize(test_y, 1000)
    np.savez(scratch / "eval.npz", input=rows, labels=labels)
    np.savez(scratch / "calibration.npz", input=train_x[:300])
    build_digits_onnx(scratch / "digits.onnx", quantize=False)
    build_large_digits_onnx(scratch / "wide.onnx")
    print(f"python {sys.version.split()[0]}; latency: median of 5 runs on 1,000 rows")
    print(
        f"{'model':<8}{'mode':<14}{'size MB':>9}{'size ratio':>12}{'latency ratio':>15}{'accuracy':>10}{'delta':>8}"
    )
    for name in ("digits", "wide"):
        for mode in ("int8-dynamic", "int8-static"):
            report = optimize_model(
                scratch / f"{name}.onnx",
                scratch / f"{name}-{mode}.onnx",
                mode=mode,
                evaluation=scratch / "eval.npz",
                calibration=scratch / "calibration.npz",
                max_drop=100,  # report, do not gate
            )
            print(
                f"{name:<8}{mode:<14}{report.original_size / 1e6:>9.2f}"
                f"{report.optimized_size / report.original_size:>12.2f}"
                f"{report.optimized.latency_ms / report.original.latency_ms:>15.2f}"
                f"{report.optimized.quality:>10.2f}{-report.quality_drop:>+8.2f}"
            )


if __name__ == "__main__":
    main()
