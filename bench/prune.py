"""Structured pruning on a model built from code: size, latency and accuracy, pruned/original.

The model is the 4 x 1,024 MLP of the digits (`digits-large`, 13 MB); `maas optimize --prune`
removes a share of each hidden layer's units (no retraining), alone and followed by int8-dynamic
quantization. Scored on the held-out digits (the 450 test rows repeated to 1,000); latency is the
median of 5 runs on the 1,000-row batch, both models measured in the same run.

    .venv/bin/python bench/prune.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    from maas.local.demo import build_large_digits_onnx, digits_split
    from maas.optimize import optimize_model

    scratch = Path(tempfile.mkdtemp(prefix="maas-prune-"))
    _, test_x, _, test_y = digits_split()
    np.savez(scratch / "eval.npz", input=np.resize(test_x, (1000, 64)), labels=np.resize(test_y, 1000))
    build_large_digits_onnx(scratch / "wide.onnx")
    print(f"python {sys.version.split()[0]}; 4 x 1,024 MLP; latency: median of 5 runs on 1,000 rows")
    print(
        f"{'prune':>6}  {'then':<14}{'size MB':>9}{'size ratio':>12}{'latency ratio':>15}{'accuracy':>10}{'delta':>8}"
    )
    for ratio in (0.25, 0.5, 0.75):
        for mode in ("prune", "int8-dynamic"):
            report = optimize_model(
                scratch / "wide.onnx",
                scratch / "pruned.onnx",
                mode=mode,
                prune=ratio,
                evaluation=scratch / "eval.npz",
                max_drop=100,  # report, do not gate
            )
            print(
                f"{ratio:>6.2f}  {'-' if mode == 'prune' else mode:<14}{report.optimized_size / 1e6:>9.2f}"
                f"{report.size_ratio:>12.3f}{report.optimized.latency_ms / report.original.latency_ms:>15.3f}"
                f"{report.optimized.quality:>10.2f}{-report.quality_drop:>+8.2f}"
            )


if __name__ == "__main__":
    main()
