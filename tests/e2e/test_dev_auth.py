"""`maas dev --auth iam`: as on the deployed API, a request without a valid SigV4 signature
is refused on every route, and a signed one is served."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from maas.release.oip_client import OipHttpClient
from tests.e2e.conftest import DevServer, running_dev_server

pytestmark = pytest.mark.e2e
BODY = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with running_dev_server(tmp_path_factory.mktemp("auth-models"), "--auth", "iam") as running:
        yield running


def send(
    server: DevServer, method: str, path: str, body: str = "", secret: str | None = None
) -> tuple[int, Any]:
    headers = {"content-type": "application/json", "host": f"127.0.0.1:{server.port}"}
    if secret is not None:
        request = AWSRequest(method=method, url=f"{server.url}{path}", data=body.encode(), headers=headers)
        SigV4Auth(Credentials("testing", secret), "execute-api", "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(method, path, body.encode(), headers)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v2/health/ready", ""),
        ("POST", "/v2/models/digits/infer", BODY),
        ("GET", "/registry/models", ""),
    ],
)
def test_a_request_without_credentials_is_refused_on_every_route(
    server: DevServer, method: str, path: str, body: str
) -> None:
    status, answer = send(server, method, path, body)
    assert status == 401
    assert "needs a SigV4 (IAM) signature" in answer["error"]


def test_a_request_signed_with_the_wrong_secret_is_forbidden(server: DevServer) -> None:
    status, answer = send(server, "POST", "/v2/models/digits/infer", BODY, secret="not-the-secret")
    assert status == 403
    assert "signature does not match" in answer["error"]


def test_a_signed_request_is_served(server: DevServer) -> None:
    status, answer = send(server, "POST", "/v2/models/digits/infer", BODY, secret="testing")
    assert status == 200, answer
    assert answer["model_name"] == "digits"
    assert send(server, "GET", "/registry/models", secret="testing")[0] == 200


def test_a_body_changed_after_signing_is_forbidden(server: DevServer) -> None:
    headers = {"content-type": "application/json", "host": f"127.0.0.1:{server.port}"}
    request = AWSRequest(
        method="POST", url=f"{server.url}/v2/models/digits/infer", data=BODY.encode(), headers=headers
    )
    SigV4Auth(Credentials("testing", "testing"), "execute-api", "us-east-1").add_auth(request)
    tampered = BODY.replace("0.0", "9.0", 1).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", "/v2/models/digits/infer", tampered, dict(request.headers.items()))
    response = connection.getresponse()
    assert response.status == 403
    assert "signature does not match" in json.loads(response.read())["error"]


def test_the_release_client_signs_its_requests(server: DevServer) -> None:
    version, outputs, _ = OipHttpClient(server.url, sign=True, region="us-east-1").infer(
        "digits", "prod", {"input": np.zeros((1, 64), dtype=np.float32)}
    )
    assert version == "1"
    assert "label" in outputs
