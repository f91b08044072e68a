"""Cold start pays only for what the first request needs (in the style of Powertools'
import-time tests): what the handler imports, and its import time as a ratio to a bare
import of the runtime, both measured in fresh processes of this run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = REPO_ROOT / "functions" / "predict"
IMPORT_HANDLER = f"import sys; sys.path.insert(0, {str(FUNCTION_DIR)!r}); import handler"
IMPORT_RUNTIME = "import numpy, onnxruntime"
# Generous: a regression this guards against (an eager boto3, moto or scikit-learn import)
# adds 100 ms and more; noise between runs on a shared machine is far smaller than that.
MAX_RATIO = 3.0


def environment(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MAAS_MODEL_DIR": str(tmp_path),
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }


def test_the_handler_imports_nothing_the_first_request_does_not_need(tmp_path: Path) -> None:
    probe = IMPORT_HANDLER + "; import json; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=environment(tmp_path), capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    unwanted = {
        "boto3",  # only the registry source needs AWS clients
        "moto",
        "sklearn",
        "skl2onnx",
        "yaml",
        "pydantic_settings",
        "http.server",
        "onnxruntime",  # loaded with the first model, not before
        "tflite_runtime",
        "maas.local",
        "maas.registry",
        "maas.optimize",
        "maas.config",
    }
    assert loaded.isdisjoint(unwanted), sorted(loaded & unwanted)


def fastest_import_seconds(codes: list[str], env: dict[str, str], runs: int = 9) -> list[float]:
    """The fastest of `runs` fresh-process runs of each snippet, interleaved: noise from a
    busy machine only ever adds time, so the minimum is the stable figure."""
    best = [float("inf")] * len(codes)
    for _ in range(runs):
        for index, code in enumerate(codes):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def test_importing_the_handler_costs_at_most_a_bounded_ratio_of_importing_the_runtime(tmp_path: Path) -> None:
    runtime, handler = fastest_import_seconds([IMPORT_RUNTIME, IMPORT_HANDLER], environment(tmp_path))
    assert handler / runtime <= MAX_RATIO, (
        f"handler {handler * 1000:.0f} ms vs runtime {runtime * 1000:.0f} ms"
    )
