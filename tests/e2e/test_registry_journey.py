"""A model team's day on `maas dev`: register a version with the CLI, promote it, roll back, canary."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from maas.local.demo import build_digits_onnx
from tests.e2e.conftest import ALIAS_TTL, DevServer

pytestmark = pytest.mark.e2e

ROW = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0]
ROW += [0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
BODY = json.dumps(
    {
        "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}],
        "outputs": [{"name": "label"}],
    }
)


def maas(server: DevServer, *args: str) -> dict:
    """Run the CLI against the local stack, as `maas dev` tells the user to; its --json output."""
    done = subprocess.run(
        [sys.executable, "-m", "maas.cli", "models", "--json", *args],
        env={**os.environ, "AWS_ENDPOINT_URL": server.aws_endpoint},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class OipClient:
    def __init__(self, server: DevServer) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

    def served_version(self) -> str:
        self.connection.request("POST", "/v2/models/digits/infer", BODY, {"content-type": "application/json"})
        response = self.connection.getresponse()
        answer = json.loads(response.read())
        assert response.status == 200, answer
        assert answer["outputs"][0]["data"] == [0]
        return str(answer["model_version"])

    def wait_for_version(self, version: str, limit: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < limit:
            if self.served_version() == version:
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"version {version} was not served within {limit} s")


def test_register_promote_rollback_and_canary_through_the_cli(dev_server: DevServer, tmp_path: Path) -> None:
    client = OipClient(dev_server)
    assert client.served_version() == "1"

    # A genuinely different artifact: the same network, not quantized.
    artifact = tmp_path / "digits-fp32.onnx"
    build_digits_onnx(artifact, quantize=False)
    registered = maas(
        dev_server, "register", "digits", str(artifact), "--metric", "accuracy=0.97", "--commit", "abc"
    )
    assert registered["version"] == 2
    assert registered["metrics"] == {"accuracy": 0.97}

    maas(dev_server, "promote", "digits", "2")
    # Without a redeploy: the warm function re-reads the alias once its TTL has passed.
    assert client.wait_for_version("2", ALIAS_TTL + 3) <= ALIAS_TTL + 3

    rolled_back = maas(dev_server, "rollback", "digits")
    assert rolled_back["weights"] == {"1": 100}
    client.wait_for_version("1", ALIAS_TTL + 3)

    maas(dev_server, "canary", "digits", "1=50", "2=50")
    time.sleep(ALIAS_TTL + 0.5)
    counts = Counter(client.served_version() for _ in range(1000))
    assert set(counts) == {"1", "2"}
    assert 400 <= counts["2"] <= 600, counts

    history = maas(dev_server, "history", "digits")
    assert [entry["action"] for entry in history] == ["canary", "rollback", "promote", "promote"]


def test_the_registry_api_answers_through_the_gateway(dev_server: DevServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", dev_server.port, timeout=30)
    connection.request("GET", "/registry/models/digits-tflite")
    response = connection.getresponse()
    answer = json.loads(response.read())
    assert response.status == 200, answer
    assert [a["alias"] for a in answer["aliases"]] == ["prod"]
    assert answer["versions"][0]["framework"] == "tflite"
    connection.request("PUT", "/registry/models/digits-tflite/aliases/prod", json.dumps({"version": 7}))
    response = connection.getresponse()
    assert response.status == 404
    assert json.loads(response.read()) == {"error": "model 'digits-tflite' version '7' not found"}
