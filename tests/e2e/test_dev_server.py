"""A new user's first session: `maas dev`, then a standard OIP client and curl against it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.request import urlopen

import numpy as np
import pytest

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DevServer:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def wait_until_live(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"maas dev exited early:\n{self.process.stdout.read()}")  # type: ignore[union-attr]
            try:
                with urlopen(f"{self.url}/v2/health/live", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("maas dev did not come up")

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a user would; the exit code and everything it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        output, _ = self.process.communicate(timeout=30)
        return self.process.returncode, output


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    port = free_port()
    models = tmp_path_factory.mktemp("dev-models")
    process = subprocess.Popen(
        [sys.executable, "-m", "maas.cli", "dev", "--port", str(port), "--models", str(models)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = DevServer(process, port)
    try:
        server.wait_until_live()
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_triton_client_checks_health_reads_metadata_and_classifies_digits(
    dev_server: DevServer, digits_test_rows: tuple
) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=f"127.0.0.1:{dev_server.port}")
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("digits")
        metadata = client.get_model_metadata("digits")
        assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}]

        features, labels = digits_test_rows
        batch = triton.InferInput("input", list(features.shape), "FP32")
        batch.set_data_from_numpy(features)  # binary data, the client's default
        result = client.infer("digits", [batch])  # outputs come back as binary data too
        predicted = result.as_numpy("label")
        probabilities = result.as_numpy("probabilities")
        assert probabilities.shape == (len(labels), 10)
        assert (predicted == labels).mean() > 0.93

        as_json = triton.InferInput("input", [1, 64], "FP32")
        as_json.set_data_from_numpy(features[:1], binary_data=False)
        wanted = triton.InferRequestedOutput("label", binary_data=False)
        single = client.infer("digits", [as_json], outputs=[wanted])
        assert single.as_numpy("label").tolist() == [labels[0]]
    finally:
        client.close()


def test_the_tflite_demo_answers_the_same_question(dev_server: DevServer, digits_test_rows: tuple) -> None:
    import tritonclient.http as triton

    features, labels = digits_test_rows
    client = triton.InferenceServerClient(url=f"127.0.0.1:{dev_server.port}")
    try:
        batch = triton.InferInput("input", list(features.shape), "FP32")
        batch.set_data_from_numpy(features)
        result = client.infer("digits-tflite", [batch])
        assert (result.as_numpy("label") == labels).mean() > 0.9
        assert result.as_numpy("probabilities").dtype == np.float32
    finally:
        client.close()


def test_curl_reads_metadata_and_runs_inference(dev_server: DevServer, digits_test_rows: tuple) -> None:
    features, labels = digits_test_rows
    metadata = subprocess.run(
        ["curl", "-sf", f"{dev_server.url}/v2/models/digits"], capture_output=True, text=True, check=True
    )
    assert json.loads(metadata.stdout)["platform"] == "onnxruntime_onnx"
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [3, 64], "datatype": "FP32", "data": features[:3].tolist()}]}
    )
    answer = subprocess.run(
        [
            "curl",
            "-sf",
            "-H",
            "content-type: application/json",
            "-d",
            body,
            f"{dev_server.url}/v2/models/digits/infer",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    outputs = {output["name"]: output for output in json.loads(answer.stdout)["outputs"]}
    assert outputs["label"]["data"] == labels[:3].tolist()


def test_a_body_over_the_lambda_limit_is_refused_with_the_limit(dev_server: DevServer) -> None:
    body = b"{" + b" " * (6 * 1024 * 1024) + b"}"
    answer = subprocess.run(
        [
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            "--data-binary",
            "@-",
            f"{dev_server.url}/v2/models/digits/infer",
        ],
        input=body,
        capture_output=True,
        check=True,
    )
    text, status = answer.stdout.rsplit(b"\n", 1)
    assert status == b"413"
    assert "6 MB" in json.loads(text)["error"]


def test_ctrl_c_stops_the_server_cleanly(dev_server: DevServer) -> None:
    code, output = dev_server.stop()
    assert code == 0, output
    assert "maas dev: serving digits, digits-tflite" in output
    assert output.rstrip().endswith("maas dev: stopped")
    assert "Traceback" not in output
