"""What `maas dev` prints while a new user works with it: one line per request saying what
happened (method, path, status, time, the model and version that answered), and nothing of how
(no botocore lookups, no raw EMF records, no Powertools warnings)."""

from __future__ import annotations

import http.client
import json
import re
import time

import pytest

from tests.e2e.conftest import DevServer

pytestmark = pytest.mark.e2e

ROW = [0, 0, 5, 13, 9, 1, 0, 0] * 8
DIGITS = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]})


def request(server: DevServer, method: str, path: str, body: str | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(method, path, body, {"content-type": "application/json"} if body else {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def new_lines(server: DevServer, since: int) -> list[str]:
    time.sleep(0.3)  # the log is written by the server's own threads
    return server.log.read_text().splitlines()[since:]


def test_a_served_request_prints_one_line_with_its_model_and_version(dev_server: DevServer) -> None:
    before = len(dev_server.log.read_text().splitlines())
    response = request(dev_server, "POST", "/v2/models/digits/infer", DIGITS)
    assert response.status == 200
    # The model and version that answered travel as headers too (under a canary: the arm drawn).
    assert (response.getheader("x-maas-model"), response.getheader("x-maas-model-version")) == ("digits", "1")
    lines = new_lines(dev_server, before)
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"\S+ INFO maas\.local\.http_server: 127\.0\.0\.1 POST /v2/models/digits/infer 200 \d+\.\d ms digits v1",
        lines[0].split(" ", 1)[1],
    ), lines


def test_a_refused_request_prints_one_line_with_its_status(dev_server: DevServer) -> None:
    before = len(dev_server.log.read_text().splitlines())
    assert request(dev_server, "GET", "/v2/models/no-such-model").status == 404
    lines = new_lines(dev_server, before)
    assert len(lines) == 1, lines
    assert lines[0].endswith(" ms") and "GET /v2/models/no-such-model 404 " in lines[0], lines


def test_the_console_has_no_botocore_lines_emf_records_or_powertools_warnings(dev_server: DevServer) -> None:
    for path in ("/v2/health/ready", "/v2/models/digits", "/registry/models"):
        assert request(dev_server, "GET", path).status == 200
    assert request(dev_server, "POST", "/v2/models/digits/infer", DIGITS).status == 200
    log = dev_server.log.read_text()
    assert "botocore" not in log
    assert '{"_aws"' not in log  # EMF went to the embedded CloudWatch
    assert "UserWarning" not in log and "No application metrics" not in log
    banner = next(line for line in log.splitlines() if line.startswith("maas dev: serving"))
    assert "digits" in banner and "digits-tflite" in banner
