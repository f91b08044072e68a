"""A new user's first session: `maas dev`, then a standard OIP client and curl against it."""

from __future__ import annotations

import contextlib
import http.client
import json
import resource
import socket
import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests import fakes
from tests.e2e.conftest import DevServer, running_dev_server

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


def open_connections(server: DevServer, count: int) -> list[socket.socket]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < count + 100:
        pytest.skip(f"{count + 100} open files needed, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, count + 100), hard))
    return [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(count)]


def test_1000_idle_connections_and_4_slow_uploads_do_not_keep_health_from_answering(
    dev_server: DevServer,
) -> None:
    """Idle keep-alive clients and uploads that never finish cost the gateway a socket each,
    not the thread that answers: /v2/health/live answers as fast as ever (generously, within 5 s)."""
    idle = open_connections(dev_server, 1000)
    slow = open_connections(dev_server, 4)
    try:
        for connection in slow:
            connection.sendall(
                b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: local\r\n"
                b'Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"inputs": ['
            )
        started = time.monotonic()
        client = http.client.HTTPConnection("127.0.0.1", dev_server.port, timeout=30)
        client.request("GET", "/v2/health/live")
        response = client.getresponse()
        answer = json.loads(response.read())
        latency = time.monotonic() - started
        client.close()
    finally:
        for connection in idle + slow:
            connection.close()
    print(f"/v2/health/live answered in {latency * 1000:.1f} ms beside 1,000 idle and 4 slow connections")
    assert (response.status, answer) == (200, {"live": True})
    assert latency < 5


HIDDEN = b"GET /v2/models/smuggled-past-the-gateway HTTP/1.1\r\nHost: local\r\n\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 0\r\nContent-Length: %d" % len(HIDDEN),
        b"Content-Length: +%d" % len(HIDDEN),
        b"Content-Length:  %d" % len(HIDDEN),
        b"Transfer-Encoding: identity\r\nContent-Length: %d" % len(HIDDEN),
        b"Transfer-Encoding: gzip",
    ],
    ids=[
        "two-content-lengths",
        "plus-sign",
        "extra-space",
        "with-transfer-encoding",
        "transfer-encoding-alone",
    ],
)
def test_a_request_smuggled_behind_a_hostile_content_length_is_refused_and_never_served(
    dev_server: DevServer, framing: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", dev_server.port), timeout=10) as connection:
        connection.sendall(
            b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n"
            + framing
            + b"\r\n\r\n"
            + HIDDEN
        )
        received = b""
        with contextlib.suppress(TimeoutError):
            while chunk := connection.recv(65536):
                received += chunk
    assert received.startswith(b"HTTP/1.1 400 "), received
    assert received.count(b"HTTP/1.1 ") == 1, received  # closed after the one answer
    error = json.loads(received.partition(b"\r\n\r\n")[2])["error"]
    assert "Content-Length" in error or "Transfer-Encoding" in error, error
    time.sleep(0.2)  # the request log is written after the answer
    assert b"smuggled-past-the-gateway" not in dev_server.log.read_bytes()


@pytest.fixture(scope="module")
def identity_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """`maas dev` with `identity`, which answers each input with itself."""
    models = tmp_path_factory.mktemp("limit-models")
    fakes.identity_model(models / "identity" / "1" / "model.onnx")
    with running_dev_server(models) as running:
        yield running


def post(server: DevServer, path: str, body: bytes, content_type: str) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    connection.request("POST", path, body, {"content-type": content_type})
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer


def test_a_4_6_mb_binary_body_is_refused_with_the_event_limit_it_would_break_in_aws(
    identity_server: DevServer,
) -> None:
    """4.6 MB is under 6 MB, but Lambda gets it base64-encoded in the event: 6.1 MB, refused."""
    body = np.zeros(46 * 1024 * 1024 // 40, dtype=np.float32).tobytes()
    status, answer = post(identity_server, "/v2/models/identity/infer", body, "application/octet-stream")
    assert status == 413, answer
    assert "invocation event" in str(answer["error"])
    assert "6 MB" in str(answer["error"])


def identity_request(elements: int) -> bytes:
    """An identity request whose in_fp64 holds `elements` zeros; every other input two values."""
    tensor = {"name": "in_fp64", "shape": [elements], "datatype": "FP64", "data": [0] * elements}
    return json.dumps(
        {"inputs": fakes.identity_inputs(in_fp64=tensor), "outputs": [{"name": "out_fp64"}]},
        separators=(",", ":"),
    ).encode()


def test_an_answer_over_6_mb_is_an_error_naming_the_limit_as_in_aws(identity_server: DevServer) -> None:
    """A 4 MB request whose answer is 8 MB of JSON: Lambda refuses the response, API Gateway
    answers 5xx, and so does maas dev, naming the limit."""
    status, answer = post(
        identity_server, "/v2/models/identity/infer", identity_request(2_000_000), "application/json"
    )
    assert status == 502, answer
    assert "response" in str(answer["error"])
    assert "6 MB" in str(answer["error"])
    small_status, small = post(
        identity_server, "/v2/models/identity/infer", identity_request(1000), "application/json"
    )
    assert small_status == 200, small


def test_ctrl_c_stops_the_server_cleanly(dev_server: DevServer) -> None:
    """Even with a client still connected, as a browser keeps a preconnected socket."""
    client = socket.create_connection(("127.0.0.1", dev_server.port), timeout=30)
    time.sleep(0.2)
    code, output = dev_server.stop()
    client.close()
    assert code == 0, output
    assert "maas dev: serving digits, digits-tflite" in output
    assert output.rstrip().endswith("maas dev: stopped")
    assert "Traceback" not in output
