"""A new user's first session: `maas dev`, then a standard OIP client and curl against it."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from tests.e2e.conftest import DevServer

pytestmark = pytest.mark.e2e


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
