"""Write the example's `digits-large` model (a 4x1024 MLP trained from code) as an ONNX file.

.venv/bin/python examples/sagemaker/make_large_model.py digits-large.onnx
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from maas.local.demo import build_large_digits_onnx

if __name__ == "__main__":
    warnings.filterwarnings("ignore")  # scikit-learn's convergence warning after 30 epochs
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "digits-large.onnx")
    print("training a 4 x 1,024 MLP on scikit-learn's digits: 30 epochs, each printed as it ends", flush=True)
    build_large_digits_onnx(target, verbose=True)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")
