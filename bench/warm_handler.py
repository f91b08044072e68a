"""Warm latency of the predict handler against a bare baseline, in one process.

The handler path: API Gateway event -> maas.http.oip (route, msgspec decode) -> OIP checks ->
ONNX Runtime -> OIP encode -> Lambda proxy response, with EMF metrics on (written, discarded).
The baseline: json.loads -> np.asarray -> session.run -> json.dumps, nothing else.
Both run the same digits model file with their own sessions. Prints per-call medians
and the ratio handler/baseline for one row and for a 1,000-row batch.

    .venv/bin/python bench/warm_handler.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def median_seconds(call: Callable[[], object], repeat: int, inner: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(inner):
            call()
        samples.append((time.perf_counter() - started) / inner)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    os.environ.update(AWS_DEFAULT_REGION="us-east-1", POWERTOOLS_METRICS_NAMESPACE="MaaS")
    from maas.local.context import LocalLambdaContext
    from maas.local.demo import build_digits_onnx, digits_split
    from maas.local.events import http_api_event
    from maas.local.gateway import load_handler

    scratch = Path(tempfile.mkdtemp(prefix="maas-bench-"))
    model_path = scratch / "digits" / "1" / "model.onnx"
    build_digits_onnx(model_path)
    os.environ["MAAS_MODEL_DIR"] = str(scratch)
    handler = load_handler(REPO / "functions" / "predict" / "handler.py")

    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])

    def baseline(body: str) -> str:
        request = json.loads(body)
        tensor = request["inputs"][0]
        features = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        label, probabilities = session.run(None, {tensor["name"]: features})
        return json.dumps(
            {
                "model_name": "digits",
                "outputs": [
                    {
                        "name": "label",
                        "shape": list(label.shape),
                        "datatype": "INT64",
                        "data": label.tolist(),
                    },
                    {
                        "name": "probabilities",
                        "shape": list(probabilities.shape),
                        "datatype": "FP32",
                        "data": probabilities.ravel().tolist(),
                    },
                ],
            }
        )

    _, test_x, _, _ = digits_split()
    rows = np.resize(test_x, (1000, 64))
    print(f"python {sys.version.split()[0]}, onnxruntime {ort.__version__}, repeat {args.repeat}")
    print(f"{'case':<12}{'baseline':>12}{'handler':>12}{'ratio':>8}")
    for label, batch, inner in (("1 row", rows[:1], 20), ("1000 rows", rows, 1)):
        body = json.dumps(
            {
                "inputs": [
                    {"name": "input", "shape": list(batch.shape), "datatype": "FP32", "data": batch.tolist()}
                ]
            }
        )
        event = http_api_event(
            method="POST",
            target="/v2/models/digits/infer",
            headers={"content-type": "application/json"},
            body=body.encode(),
        )
        context = LocalLambdaContext()

        def through_handler(event: dict = event, context: LocalLambdaContext = context) -> object:
            return handler(event, context)

        def bare(body: str = body) -> object:
            return baseline(body)

        # EMF lines go to stdout in Lambda too; keep them off the terminal.
        with contextlib.redirect_stdout(io.StringIO()):
            response = through_handler()
            assert response["statusCode"] == 200, response
            for _ in range(20):
                through_handler()
                bare()
            base = median_seconds(bare, args.repeat, inner)
            served = median_seconds(through_handler, args.repeat, inner)
        print(f"{label:<12}{base * 1e3:>10.3f}ms{served * 1e3:>10.3f}ms{served / base:>8.2f}")


if __name__ == "__main__":
    main()
