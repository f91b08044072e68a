"""`maas dev --auth iam`: as on the deployed API, a request without a valid SigV4 signature
is refused on every route, and a signed one is served."""

from __future__ import annotations

import hashlib
import http.client
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

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
    server: DevServer,
    method: str,
    path: str,
    body: str = "",
    secret: str | None = None,
    *,
    access_key: str = "testing",
    signed_minutes_ago: float = 0,
) -> tuple[int, Any]:
    headers = {"content-type": "application/json", "host": f"127.0.0.1:{server.port}"}
    if secret is not None:
        request = AWSRequest(method=method, url=f"{server.url}{path}", data=body.encode(), headers=headers)
        signing_time = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=signed_minutes_ago)
        # botocore signs with its clock: set back, it signs as a client that did so long ago.
        with mock.patch("botocore.auth.get_current_datetime", return_value=signing_time):
            SigV4Auth(Credentials(access_key, secret), "execute-api", "us-east-1").add_auth(request)
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


def test_a_request_signed_by_a_foreign_access_key_is_forbidden(server: DevServer) -> None:
    """The right secret under another key id is another identity: refused, as AWS would."""
    status, answer = send(
        server, "POST", "/v2/models/digits/infer", BODY, secret="testing", access_key="AKIAIOSFODNN7EXAMPLE"
    )
    assert status == 403
    assert "access key 'AKIAIOSFODNN7EXAMPLE' is not allowed here" in answer["error"]


def test_a_signature_made_20_minutes_ago_is_refused_as_expired(server: DevServer) -> None:
    status, answer = send(
        server, "POST", "/v2/models/digits/infer", BODY, secret="testing", signed_minutes_ago=20
    )
    assert status == 403
    assert "the signature has expired" in answer["error"]


def test_a_signature_from_a_clock_20_minutes_ahead_is_refused(server: DevServer) -> None:
    status, answer = send(server, "GET", "/registry/models", secret="testing", signed_minutes_ago=-20)
    assert status == 403
    assert "the signature has expired" in answer["error"]


def test_a_signature_within_the_15_minutes_aws_allows_is_served(server: DevServer) -> None:
    status, answer = send(
        server, "POST", "/v2/models/digits/infer", BODY, secret="testing", signed_minutes_ago=10
    )
    assert status == 200, answer


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


def tampered_after_signing(server: DevServer, **extra_headers: str) -> tuple[int, Any]:
    """Sign BODY, then send another body with the same headers."""
    headers = {"content-type": "application/json", "host": f"127.0.0.1:{server.port}", **extra_headers}
    request = AWSRequest(
        method="POST", url=f"{server.url}/v2/models/digits/infer", data=BODY.encode(), headers=headers
    )
    SigV4Auth(Credentials("testing", "testing"), "execute-api", "us-east-1").add_auth(request)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    tampered = BODY.replace("0.0", "9.0", 1).encode()
    connection.request("POST", "/v2/models/digits/infer", tampered, dict(request.headers.items()))
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer


@pytest.mark.parametrize(
    "claimed",
    ["UNSIGNED-PAYLOAD", hashlib.sha256(BODY.encode()).hexdigest()],
    ids=["unsigned-payload", "hash-of-the-original-body"],
)
def test_a_signed_claim_about_the_body_does_not_let_another_body_through(
    server: DevServer, claimed: str
) -> None:
    """x-amz-content-sha256 names the body's hash; a claim that is not the hash of the body
    sent would let the body change after signing, so it is refused."""
    status, answer = tampered_after_signing(server, **{"x-amz-content-sha256": claimed})
    assert status == 403, answer
    assert "x-amz-content-sha256" in answer["error"]


def test_the_release_client_signs_its_requests(server: DevServer) -> None:
    version, outputs, _ = OipHttpClient(server.url, sign=True, region="us-east-1").infer(
        "digits", "prod", {"input": np.zeros((1, 64), dtype=np.float32)}
    )
    assert version == "1"
    assert "label" in outputs
