"""Hostile model files against `maas dev`: damaged copies of the demo TFLite and ONNX models,
made here (fakes.mutants: bytes changed, files cut short, offsets and lengths overwritten),
are registered through the registry API. Each is refused with a 400 naming the file or
registered; every version registered is then asked for a prediction. After every file and
every prediction the server answers health: no file takes maas dev down.

Before TFLite files were verified and functions ran in worker processes, maas dev ended
within the first few damaged TFLite files (tflite-runtime's SIGSEGV or SIGBUS, inside the
registry function), after answering 500 for one whose tensor name was not UTF-8.
"""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests import fakes
from tests.e2e.conftest import DevServer, running_dev_server

pytestmark = pytest.mark.e2e

MUTANTS_PER_FORMAT = 110  # 220 files in all
ROW = [0, 0, 5, 13, 9, 1, 0, 0] * 8
DIGITS = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevServer, Path]]:
    models = tmp_path_factory.mktemp("fuzz-models")
    with pytest.MonkeyPatch.context() as patched:
        # As in Lambda, the functions know their memory, so a file that plans huge tensors meets
        # the memory budgets instead of this machine's memory.
        patched.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        with running_dev_server(models) as running:
            yield running, models


class Client:
    """One keep-alive connection to the gateway, and one to the embedded AWS for uploads."""

    def __init__(self, server: DevServer) -> None:
        self.server = server
        self.gateway = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        self.aws = http.client.HTTPConnection(urlsplit(server.aws_endpoint).netloc, timeout=60)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, str) or body is None else json.dumps(body)
        self.gateway.request(method, path, data, {"content-type": "application/json"} if data else {})
        response = self.gateway.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            raise AssertionError(
                f"{method} {path}: {response.status} with a body that is not JSON: {raw[:200]!r}"
            ) from None

    def register(self, name: str, filename: str, data: bytes) -> tuple[int, dict[str, Any]]:
        status, upload = self.call("POST", f"/registry/models/{name}/uploads", {"filename": filename})
        assert status == 201, upload
        url = urlsplit(upload["upload_url"])
        self.aws.request("PUT", f"{url.path}?{url.query}", data)
        put = self.aws.getresponse()
        put.read()
        assert put.status == 200, put.status
        return self.call("POST", f"/registry/models/{name}/versions", {"upload_key": upload["upload_key"]})

    def assert_healthy(self, after: str) -> None:
        assert self.server.process.poll() is None, f"maas dev ended after {after}"
        assert self.call("GET", "/v2/health/live") == (200, {"live": True}), after
        assert self.call("GET", "/v2/health/ready") == (200, {"ready": True}), after


def test_no_damaged_model_file_takes_maas_dev_down(server: tuple[DevServer, Path]) -> None:
    dev, models = server
    client = Client(dev)
    originals = {
        "tflite": (resources.files("maas.local") / "assets" / "digits-int8.tflite").read_bytes(),
        "onnx": (models / "digits" / "1" / "model.onnx").read_bytes(),
    }
    outcomes: Counter[str] = Counter()
    registered: list[tuple[str, int, str]] = []
    for seed, (suffix, original) in enumerate(originals.items()):
        name = f"fuzz-{suffix}"
        for damage, data in fakes.mutants(original, MUTANTS_PER_FORMAT, seed=seed):
            status, body = client.register(name, f"model.{suffix}", data)
            if status == 201:
                registered.append((name, body["version"], damage))
            else:
                assert status == 400, (suffix, damage, status, body)
                assert body["error"].startswith(f"cannot register 'model.{suffix}': "), (damage, body)
                assert "crashed" not in body["error"] or suffix == "onnx", (damage, body)
            outcomes[f"{suffix} {status}"] += 1
            client.assert_healthy(f"registering {suffix} mutant {damage}")
    assert sum(outcomes.values()) >= 200
    assert outcomes["tflite 400"] > MUTANTS_PER_FORMAT // 2, outcomes
    for name, version, damage in registered:
        status, body = client.call("POST", f"/v2/models/{name}/versions/{version}/infer", DIGITS)
        if status >= 400:
            assert set(body) == {"error"}, (damage, status, body)
        else:
            assert "outputs" in body, (damage, status, body)
        outcomes[f"served {status}"] += 1
        client.assert_healthy(f"serving {name} version {version} ({damage})")
    # Every answer is on record: a served mutant is a model, a refusal a model error.
    print(dict(outcomes))
