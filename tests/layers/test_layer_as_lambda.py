"""The layers as Lambda loads them: the built x86_64 layer and the function asset, each zipped
and unzipped as the upload does, run by Python 3.12 in a fresh process with nothing on its
path but the task root and the layer's `python/` (as `/opt/python` is), serve the golden
requests. A layer that cannot import the handler, or answers otherwise, fails here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from maas_stack.bundling import layer_builder

from maas.local.events import http_api_event
from tests.layers.test_layer_build import OUT, REPO_ROOT, find_python

pytestmark = pytest.mark.layers

builder = layer_builder()
GOLDEN = sorted((REPO_ROOT / "tests" / "data" / "golden").glob("*.json"))
MB = 1024 * 1024
# What each runtime's layer may take (issue 19): the runtime, numpy and what the function needs.
LAYER_BUDGET_MB = {"onnx": 120}

# The Lambda bootstrap's path, without the runtime's own site-packages (boto3): -S -E -B.
PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import handler, numpy, onnxruntime

class Context:
    function_name = "maas-predict"

answers = [handler.handler(event, Context()) for event in json.load(open(sys.argv[3]))]
print(json.dumps({
    "answers": answers,
    "files": {"handler": handler.__file__, "numpy": numpy.__file__, "onnxruntime": onnxruntime.__file__},
    "pydantic_loaded": "pydantic" in sys.modules,
}))
"""


def golden_event(case: dict[str, Any]) -> dict[str, Any]:
    request = case["request"]
    body = json.dumps(request["body"]).encode() if "body" in request else b""
    return http_api_event(
        method=request["method"],
        target=request["path"],
        headers={"content-type": "application/json"},
        body=body,
    )


@pytest.fixture(scope="module")
def served(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    spec = builder.layer_spec("onnx", "x86_64")
    python = find_python(spec.python)
    if python is None:  # a skip here would pass a suite that never loaded the layer
        pytest.fail(f"python{spec.python} is needed to run the {spec.name} layer and none runs here")
    root = tmp_path_factory.mktemp("lambda")
    task, layer = builder.unpack_as_lambda(
        builder.build_layer(spec, OUT),
        [(REPO_ROOT / "functions" / "predict", "."), (REPO_ROOT / "maas", "maas")],
        root,
    )
    events = root / "events.json"
    events.write_text(json.dumps([golden_event(json.loads(path.read_text())) for path in GOLDEN]))
    done = subprocess.run(
        [python, "-S", "-E", "-B", "-c", PROBE, str(task), str(layer), str(events)],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
        env={
            "MAAS_MODEL_DIR": str(model_dir),
            "MAAS_PRELOAD": '["digits"]',
            "POWERTOOLS_METRICS_DISABLED": "true",
        },
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    result["task"], result["layer"] = str(task), str(layer)
    return result


def test_the_handler_and_its_runtime_come_from_the_asset_and_the_layer(served: dict[str, Any]) -> None:
    assert served["files"]["handler"].startswith(served["task"])
    assert served["files"]["numpy"].startswith(served["layer"])
    assert served["files"]["onnxruntime"].startswith(served["layer"])
    assert served["pydantic_loaded"] is False


@pytest.mark.parametrize("index", range(len(GOLDEN)), ids=[path.stem for path in GOLDEN])
def test_the_layer_answers_each_golden_request_as_its_file_says(served: dict[str, Any], index: int) -> None:
    expected = json.loads(GOLDEN[index].read_text())["response"]
    answer = served["answers"][index]
    assert answer["statusCode"] == expected["status"], answer["body"]
    assert answer["headers"]["Content-Type"] == "application/json"
    body = json.loads(answer["body"])
    if "body" in expected:
        assert body == expected["body"]
    if "error_starts_with" in expected:
        assert body["error"].startswith(expected["error_starts_with"])


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_the_onnx_layer_fits_its_budget(arch: str) -> None:
    layer = builder.build_layer(builder.layer_spec("onnx", arch), OUT) / "python"
    assert builder.directory_size(layer) <= LAYER_BUDGET_MB["onnx"] * MB
