"""Cold start of the predict function against a bare runtime, each in a fresh process.

Handler: a new interpreter imports `functions/predict/handler.py` as Lambda's bootstrap
does (the function directory on sys.path), which loads and warms the model at init,
then answers one API Gateway event. Baseline: a new interpreter imports numpy and
onnxruntime, loads the same model and runs it once. Both on the `digits` int8 model
from a model directory. Prints medians and the ratio.

    .venv/bin/python bench/cold_start.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROW = [0.0] * 64

HANDLER = """
import sys, json
sys.path.insert(0, sys.argv[1])  # what the Lambda bootstrap does with the task root
import handler
from maas.local.context import LocalLambdaContext
result = handler.handler(json.loads(sys.argv[2]), LocalLambdaContext())
assert result["statusCode"] == 200, result
"""

BASELINE = """
import sys
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
session.run(None, {"input": np.zeros((1, 64), dtype=np.float32)})
"""


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    from maas.local.demo import build_digits_onnx
    from maas.local.events import http_api_event

    models = Path(tempfile.mkdtemp(prefix="maas-cold-"))
    model = models / "digits" / "1" / "model.onnx"
    build_digits_onnx(model)
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]})
    event = http_api_event(
        method="POST",
        target="/v2/models/digits/infer",
        headers={"content-type": "application/json"},
        body=body.encode(),
    )
    env = {
        **os.environ,
        "MAAS_MODEL_DIR": str(models),
        "MAAS_PRELOAD": '["digits"]',
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "MaaS",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",  # as the CDK app sets it on the function
    }
    handler_command = [sys.executable, "-c", HANDLER, str(REPO / "functions" / "predict"), json.dumps(event)]
    baseline_command = [sys.executable, "-c", BASELINE, str(model)]
    handler_times, baseline_times = [], []
    timed(handler_command, env)  # warm the OS file cache for both, once
    timed(baseline_command, env)
    for _ in range(args.repeat):  # interleaved, so drift hits both alike
        baseline_times.append(timed(baseline_command, env))
        handler_times.append(timed(handler_command, env))
    base, served = statistics.median(baseline_times), statistics.median(handler_times)
    print(f"python {sys.version.split()[0]}, repeat {args.repeat}")
    print(f"baseline (import numpy+onnxruntime, load, run once): {base * 1000:8.1f} ms")
    print(f"handler  (import handler, load+warm, one request):   {served * 1000:8.1f} ms")
    print(f"ratio handler/baseline: {served / base:.2f}")


if __name__ == "__main__":
    main()
