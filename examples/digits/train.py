"""Train a scikit-learn digits classifier of your own and convert it to ONNX with skl2onnx, as a
new user would bring a model to maas: the files the README's registry, optimize and release
examples use.

    .venv/bin/python examples/digits/train.py my-digits.onnx        # logistic regression, fp32
    .venv/bin/python examples/digits/train.py my-digits.onnx --eval eval.npz --calibration calib.npz

The model takes what the demo model takes (`input`, FP32 [-1, 64], raw 0-16 pixel values) and
answers `label` and `probabilities`, so it can replace the demo's `digits` behind the same API.
`--eval` writes the held-out rows and their labels (`input`, `labels`), the evaluation file of
`maas optimize --eval` and `maas release --eval`; `--calibration` some training rows for static
quantization. Everything is made here, from scikit-learn's bundled digits: nothing is downloaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from maas.local.demo import digits_split


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="the ONNX file to write")
    parser.add_argument("--eval", type=Path, help="also write the held-out rows and labels (.npz)")
    parser.add_argument("--calibration", type=Path, help="also write 300 training rows (.npz)")
    args = parser.parse_args()

    train_x, test_x, train_y, test_y = digits_split()
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    classifier.fit(train_x, train_y)
    onnx_model = convert_sklearn(
        classifier,
        initial_types=[("input", FloatTensorType([None, 64]))],
        # Plain tensors, not a sequence of maps: OIP carries tensors.
        options={id(classifier): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    args.model.write_bytes(onnx_model.SerializeToString())
    accuracy = float((classifier.predict(test_x) == test_y).mean())
    print(f"wrote {args.model} (accuracy {accuracy:.3f} on {len(test_y)} held-out digits)")
    if args.eval is not None:
        np.savez(args.eval, input=test_x, labels=test_y)
        print(f"wrote {args.eval} ({len(test_y)} rows with labels)")
    if args.calibration is not None:
        np.savez(args.calibration, input=train_x[:300])
        print(f"wrote {args.calibration} (300 rows)")


if __name__ == "__main__":
    main()
