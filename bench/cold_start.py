"""Cold start of the predict function against a bare runtime, each in a fresh process.

Handler: a new interpreter imports `functions/predict/handler.py` as Lambda's bootstrap
does (the task root on sys.path), which loads and warms the model at init, then answers one
API Gateway event. Baseline: a new interpreter imports numpy and onnxruntime, loads the same
model and runs it once. Both on the `digits` int8 model from a model directory, interleaved.
Two configurations, each with its own baseline:

- `dev`: this environment's Python; bytecode caches are written and reused, as in any
  environment that can write them (PYTHONDONTWRITEBYTECODE is dropped for the children).
- `layer`: the built x86_64 ONNX layer and the function asset, unpacked as Lambda lays them
  out, run by Python 3.12 with only those two on its path (`-S -E`); `-B`, as on Lambda,
  whose read-only task root and layers keep no bytecode (the layer ships none either).

Prints medians and the ratio per configuration.

    .venv/bin/python bench/cold_start.py [--repeat 15] [--config dev --config layer]
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
sys.path[:0] = sys.argv[3:]  # the task root (and the layer), as the Lambda bootstrap puts them
import handler

class Context:
    function_name = "maas-predict"

result = handler.handler(json.loads(sys.argv[1]), Context())
assert result["statusCode"] == 200, result
"""

BASELINE = """
import sys
sys.path[:0] = sys.argv[3:]
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession(sys.argv[2], providers=["CPUExecutionProvider"])
session.run(None, {"input": np.zeros((1, 64), dtype=np.float32)})
"""


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def layer_setup(scratch: Path) -> tuple[str, list[str]]:
    """Python 3.12 and the sys.path of the x86_64 ONNX layer with the function asset."""
    sys.path.insert(0, str(REPO / "infra"))
    sys.path.insert(0, str(REPO))
    from maas_stack.bundling import layer_builder

    from tests.layers.test_layer_build import find_python

    builder = layer_builder()
    spec = builder.layer_spec("onnx", "x86_64")
    python = find_python(spec.python)
    if python is None:
        raise SystemExit(f"python{spec.python} is needed for the layer configuration")
    task, layer = builder.unpack_as_lambda(
        builder.build_layer(spec, REPO / "layers" / "build"),
        [(REPO / "functions" / "predict", "."), (REPO / "maas", "maas")],
        scratch / "lambda",
    )
    return python, [str(task), str(layer)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--config", action="append", choices=["dev", "layer"])
    args = parser.parse_args()
    from maas.local.demo import build_digits_onnx
    from maas.local.events import http_api_event

    scratch = Path(tempfile.mkdtemp(prefix="maas-cold-"))
    model = scratch / "models" / "digits" / "1" / "model.onnx"
    build_digits_onnx(model)
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]})
    event = json.dumps(
        http_api_event(
            method="POST",
            target="/v2/models/digits/infer",
            headers={"content-type": "application/json"},
            body=body.encode(),
        )
    )
    settings = {"MAAS_MODEL_DIR": str(model.parents[2]), "MAAS_PRELOAD": '["digits"]'}
    for config in args.config or ["dev", "layer"]:
        if config == "dev":
            python, path, flags = sys.executable, [str(REPO / "functions" / "predict")], []
            env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        else:
            python, path = layer_setup(scratch)
            flags, env = ["-S", "-E", "-B"], {}
        env = {**env, **settings, "AWS_DEFAULT_REGION": "us-east-1"}
        handler_command = [python, *flags, "-c", HANDLER, event, str(model), *path]
        baseline_command = [python, *flags, "-c", BASELINE, event, str(model), *path]
        timed(handler_command, env)  # warm the OS file cache (and, for dev, the bytecode caches)
        timed(baseline_command, env)
        handler_times, baseline_times = [], []
        for _ in range(args.repeat):  # interleaved, so drift hits both alike
            baseline_times.append(timed(baseline_command, env))
            handler_times.append(timed(handler_command, env))
        base, served = statistics.median(baseline_times), statistics.median(handler_times)
        version = subprocess.run(
            [python, "-c", "import sys; print(sys.version.split()[0])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"[{config}] python {version}, repeat {args.repeat}")
        print(f"[{config}] baseline (import numpy+onnxruntime, load, run once): {base * 1000:8.1f} ms")
        print(f"[{config}] handler  (import handler, load+warm, one request):   {served * 1000:8.1f} ms")
        print(f"[{config}] ratio handler/baseline: {served / base:.2f}")


if __name__ == "__main__":
    main()
