"""The lean request path cannot silently regress: a fresh process imports the predict handler
(which loads and warms its model) and answers one inference request, and then holds exactly
the modules listed here. A new import on that path fails this test until it is listed, with
its cost measured (BENCHMARKS.md, `bench/cold_start.py`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maas.local.demo import build_digits_onnx

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = REPO_ROOT / "functions" / "predict"

# Third-party packages allowed before the first answer: the runtime, its array library, the
# OIP messages' codec, and typing_extensions (which onnxruntime's Python layer imports).
ALLOWED_PACKAGES = {"numpy", "onnxruntime", "msgspec", "typing_extensions"}
# Every maas module the first answer needs, and no other.
ALLOWED_MAAS = {
    "maas",
    "maas.cache",
    "maas.composition",
    "maas.dataplane",
    "maas.errors",
    "maas.http",
    "maas.http.oip",
    "maas.http.proxy",
    "maas.http.router",
    "maas.metrics",
    "maas.metrics.records",
    "maas.names",
    "maas.protocol",
    "maas.protocol.binary",
    "maas.protocol.codec",
    "maas.protocol.datatypes",
    "maas.protocol.triton_types",
    "maas.protocol.wire",
    "maas.runtimes",
    "maas.runtimes.base",
    "maas.runtimes.budget",
    "maas.runtimes.onnx",
    "maas.settings",
    "maas.snapstart",
    "maas.sources",
    "maas.statistics",
}
NEVER = {"pydantic", "pydantic_core", "aws_lambda_powertools", "boto3", "botocore", "jmespath", "asyncio"}

PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])  # what the Lambda bootstrap does with the task root
import handler

class Context:
    function_name = "maas-predict"

event = {
    "version": "2.0", "rawPath": "/v2/models/digits/infer", "headers": {"content-type": "application/json"},
    "requestContext": {"http": {"method": "POST"}, "stage": "$default"}, "isBase64Encoded": False,
    "body": json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}),
}
answer = handler.handler(event, Context())
assert answer["statusCode"] == 200, answer
print(json.dumps(sorted(sys.modules)))
"""


@pytest.fixture(scope="module")
def loaded_modules(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    models = tmp_path_factory.mktemp("models")
    build_digits_onnx(models / "digits" / "1" / "model.onnx")
    env = {**os.environ, "MAAS_MODEL_DIR": str(models), "MAAS_PRELOAD": '["digits"]'}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(FUNCTION_DIR)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def third_party(modules: set[str]) -> set[str]:
    """Top-level packages that are neither the standard library nor the interpreter's own
    bookkeeping (site's editable-install finders, Cython's runtime modules), nor maas."""
    tops = {name.split(".")[0] for name in modules}
    return {
        top
        for top in tops - set(sys.stdlib_module_names)
        if not top.startswith("_") and top not in {"cython_runtime", "handler", "maas"}
    }


def test_before_its_first_answer_the_handler_imports_only_numpy_the_runtime_and_the_oip_path(
    loaded_modules: set[str],
) -> None:
    assert third_party(loaded_modules) == ALLOWED_PACKAGES


def test_the_maas_modules_of_the_first_answer_are_exactly_the_listed_ones(loaded_modules: set[str]) -> None:
    assert {name for name in loaded_modules if name.split(".")[0] == "maas"} == ALLOWED_MAAS


def test_no_validation_framework_powertools_or_aws_client_is_imported(loaded_modules: set[str]) -> None:
    assert {name.split(".")[0] for name in loaded_modules} & NEVER == set()


def test_the_probe_sees_a_module_that_a_regression_would_add(tmp_path: Path) -> None:
    # The check is only as good as its probe: pydantic imported on the path must show up.
    assert "pydantic" in third_party({"pydantic", "pydantic.main", "json", "_abc"})
