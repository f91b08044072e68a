"""A Triton client against `maas dev` asks what it asks first: which models there are, how each
is configured, and what each has served."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import fakes
from tests.e2e.conftest import DevServer, running_dev_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One predict worker: statistics are counted per process, as per warm Lambda instance."""
    with running_dev_server(tmp_path_factory.mktemp("triton-models"), "--workers", "1") as running:
        yield running


def post_index(server: DevServer, body: str) -> list[dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request("POST", "/v2/repository/index", body, {"content-type": "application/json"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 200, answer
    return answer  # type: ignore[no-any-return]


def test_the_index_lists_both_demo_models_as_ready_and_ready_leaves_out_one_without_prod(
    server: DevServer, tmp_path: Path
) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    try:
        index = client.get_model_repository_index()  # a POST without a body
    finally:
        client.close()
    for name in ("digits", "digits-tflite"):
        assert {"name": name, "version": "1", "state": "READY", "reason": ""} in index

    # Registered and never promoted: the model's route has no version to serve.
    artifact = fakes.sum_model(tmp_path / "sum.onnx")
    registered = subprocess.run(
        [sys.executable, "-m", "maas.cli", "models", "--json", "register", "unpromoted", str(artifact)],
        env={**os.environ, "AWS_ENDPOINT_URL": server.aws_endpoint},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert registered.returncode == 0, registered.stderr
    listed = {entry["name"]: entry for entry in post_index(server, "")}
    assert listed["unpromoted"]["state"] == "UNAVAILABLE"
    assert "alias 'prod' of model 'unpromoted' not found" in listed["unpromoted"]["reason"]
    ready = {entry["name"] for entry in post_index(server, '{"ready": true}')}
    assert ready == set(listed) - {"unpromoted"}
    assert {"digits", "digits-tflite"} <= ready


def test_the_config_holds_the_signature_the_metadata_reports(server: DevServer) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    try:
        config = client.get_model_config("digits")
        metadata = client.get_model_metadata("digits")
        versioned = client.get_model_config("digits-tflite", "1")
    finally:
        client.close()
    assert config["max_batch_size"] == 0
    assert config["input"] == [{"name": "input", "data_type": "TYPE_FP32", "dims": [-1, 64]}]
    assert [(t["name"], t["dims"]) for t in config["output"]] == [
        (t["name"], t["shape"]) for t in metadata["outputs"]
    ]
    assert (versioned["name"], versioned["platform"]) == ("digits-tflite", "tensorflow_lite")


def test_statistics_count_the_requests_served_successes_and_failures_apart(
    server: DevServer, digits_test_rows: tuple
) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    features, _ = digits_test_rows
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    try:
        (before,) = client.get_inference_statistics("digits", "1")["model_stats"]
        rows = triton.InferInput("input", [2, 64], "FP32")
        rows.set_data_from_numpy(np.asarray(features[:2], dtype=np.float32))
        client.infer("digits", [rows])
        client.infer("digits", [rows])
        wrong = triton.InferInput("input", [2, 32], "FP32")
        wrong.set_data_from_numpy(np.zeros((2, 32), dtype=np.float32))
        with pytest.raises(InferenceServerException, match="shape"):
            client.infer("digits", [wrong])
        (after,) = client.get_inference_statistics("digits")["model_stats"]
    finally:
        client.close()
    assert after["inference_count"] - before["inference_count"] == 2
    counted, earlier = after["inference_stats"], before["inference_stats"]
    assert counted["success"]["count"] - earlier["success"]["count"] == 2
    assert counted["fail"]["count"] - earlier["fail"]["count"] == 1
    assert counted["compute_infer"]["ns"] > earlier["compute_infer"]["ns"]
    assert after["last_inference"] > before["last_inference"]
