"""`maas dev` runs its functions as Lambda does, in processes of their own, several at once: a
request that crashes its process is a 503 naming the model, and a slow request or a long
batch file holds up neither /v2/health nor the other models.

The functions here are the project's own, with the predict handler wrapped to give two
hostile "models" that no real file could be made to give on demand: `crasher` reads
address 0 in native code (what tflite-runtime did with damaged files) and `sleeper` takes
4 s. Batch files named `slow*` take 6 s.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests import fakes
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import DevServer, running_dev_server

pytestmark = pytest.mark.e2e

WRAPPED_PREDICT = '''
"""The project's predict handler, and two hostile models for the isolation tests."""
import ctypes
import importlib.util
import time
from pathlib import Path

spec = importlib.util.spec_from_file_location("real_predict_handler", {real!r})
real = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real)


def handler(event, context):
    path = event.get("rawPath", "")
    if path.startswith("/v2/models/crasher/"):
        ctypes.string_at(0)
    if path.startswith("/v2/models/sleeper/"):
        time.sleep(4)
        return {{"statusCode": 200, "headers": {{"content-type": "application/json"}}, "body": "{{}}"}}
    if "Records" in event and "slow" in str(event):
        Path({started!r}).write_text("started")
        time.sleep(6)
    return real.handler(event, context)
'''
ROW = [0, 0, 5, 13, 9, 1, 0, 0] * 8
DIGITS = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]})


@pytest.fixture(scope="module")
def functions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's functions, the predict handler wrapped."""
    functions = tmp_path_factory.mktemp("functions")
    for name in ("registry", "metrics"):
        (functions / name).mkdir()
        (functions / name / "handler.py").symlink_to(REPO_ROOT / "functions" / name / "handler.py")
    (functions / "predict").mkdir()
    (functions / "predict" / "handler.py").write_text(
        WRAPPED_PREDICT.format(
            real=str(REPO_ROOT / "functions" / "predict" / "handler.py"),
            started=str(functions / "slow-batch-started"),
        )
    )
    return functions


@pytest.fixture(scope="module")
def server(functions: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    models = tmp_path_factory.mktemp("isolation-models")
    (models / "filled" / "1").mkdir(parents=True)
    fakes.filled_model(models / "filled" / "1" / "model.onnx")
    with running_dev_server(models, "--functions", str(functions)) as running:
        yield running


def call(server: DevServer, method: str, path: str, body: str | None = None) -> tuple[int, dict, float]:
    """Status, JSON body, and seconds taken, on a connection of its own."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    started = time.monotonic()
    try:
        connection.request(method, path, body, {"content-type": "application/json"} if body else {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}"), time.monotonic() - started
    finally:
        connection.close()


def test_a_request_that_crashes_its_process_is_a_503_naming_the_model_and_everything_else_answers(
    server: DevServer,
) -> None:
    for _ in range(2):  # its replacement crashes in turn; nothing else does
        status, body, _ = call(server, "POST", "/v2/models/crasher/infer", DIGITS)
        assert status == 503, body
        assert "model 'crasher' crashed the process serving it (SIGSEGV)" in body["error"]
        assert call(server, "GET", "/v2/health/ready")[:2] == (200, {"ready": True})
        status, body, _ = call(server, "POST", "/v2/models/digits/infer", DIGITS)
        assert status == 200, body
        assert call(server, "GET", "/registry/models")[0] == 200
    status, body, _ = call(server, "POST", "/v2/models/crasher/versions/7/infer", DIGITS)
    assert "model 'crasher' version '7' crashed" in body["error"]
    assert server.process.poll() is None


def test_a_slow_request_holds_up_neither_health_nor_other_models(server: DevServer) -> None:
    slow = threading.Thread(target=call, args=(server, "POST", "/v2/models/sleeper/infer", DIGITS))
    slow.start()
    time.sleep(0.5)
    try:
        status, _, seconds = call(server, "GET", "/v2/health/live")
        assert status == 200 and seconds < 2, seconds
        status, _, seconds = call(server, "POST", "/v2/models/digits-tflite/infer", DIGITS)
        assert status == 200 and seconds < 2, seconds
    finally:
        slow.join()


def test_a_long_batch_file_holds_up_neither_health_nor_requests(server: DevServer, functions: Path) -> None:
    s3 = boto3.client(
        "s3", endpoint_url=server.aws_endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    rows = "\n".join(json.dumps({"input": ROW}) for _ in range(3))
    s3.put_object(Bucket="maas-artifacts", Key="inputs/digits/slow.jsonl", Body=rows.encode())
    started = functions / "slow-batch-started"
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline, "the batch file was not picked up"
        time.sleep(0.1)
    status, _, seconds = call(server, "GET", "/v2/health/ready")
    assert status == 200 and seconds < 2, seconds
    status, _, seconds = call(server, "POST", "/v2/models/digits/infer", DIGITS)
    assert status == 200 and seconds < 2, seconds


def test_a_request_asking_for_more_memory_than_its_function_has_is_refused_as_in_lambda(
    server: DevServer,
) -> None:
    """The predict function has 1024 MB, as deployed: one request may take half, and 1 GiB is
    refused with the limit named, while a small one is served."""
    ask = {"inputs": [{"name": "shape", "shape": [2], "datatype": "INT64", "data": [16384, 16384]}]}
    status, body, _ = call(server, "POST", "/v2/models/filled/infer", json.dumps(ask))
    assert status == 507, body
    assert body["error"] == (
        "model 'filled' version '1' asked for 1024 MB at once, more than the 512 MB one request may "
        "allocate (MAAS_REQUEST_MEMORY_MB)"
    )
    ask["inputs"][0]["data"] = [2, 3]
    status, body, _ = call(server, "POST", "/v2/models/filled/infer", json.dumps(ask))
    assert (status, body["outputs"][0]["data"]) == (200, [1.0] * 6), body
