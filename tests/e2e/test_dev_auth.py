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
from tests.signing import sign_with_scope_date

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
    region: str = "us-east-1",
    service: str = "execute-api",
) -> tuple[int, Any]:
    headers = {"content-type": "application/json", "host": f"127.0.0.1:{server.port}"}
    if secret is not None:
        request = AWSRequest(method=method, url=f"{server.url}{path}", data=body.encode(), headers=headers)
        signing_time = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=signed_minutes_ago)
        # botocore signs with its clock: set back, it signs as a client that did so long ago.
        with mock.patch("botocore.auth.get_current_datetime", return_value=signing_time):
            SigV4Auth(Credentials(access_key, secret), service, region).add_auth(request)
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


TAMPERED = BODY.replace("0.0", "9.0", 1)


def tampered_after_signing(
    server: DevServer, signed_claim: str | None, sent_claim: str | None
) -> tuple[int, Any]:
    """Sign BODY with x-amz-content-sha256 `signed_claim` (None: without one), then send
    TAMPERED with the same headers and the claim changed to `sent_claim`."""
    headers = {"content-type": "application/json", "host": f"127.0.0.1:{server.port}"}
    if signed_claim is not None:
        headers["x-amz-content-sha256"] = signed_claim
    request = AWSRequest(
        method="POST", url=f"{server.url}/v2/models/digits/infer", data=BODY.encode(), headers=headers
    )
    SigV4Auth(Credentials("testing", "testing"), "execute-api", "us-east-1").add_auth(request)
    sent = {name: value for name, value in request.headers.items() if name != "x-amz-content-sha256"}
    if sent_claim is not None:
        sent["x-amz-content-sha256"] = sent_claim
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", "/v2/models/digits/infer", TAMPERED.encode(), sent)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer


ORIGINAL_HASH = hashlib.sha256(BODY.encode()).hexdigest()
TAMPERED_HASH = hashlib.sha256(TAMPERED.encode()).hexdigest()


@pytest.mark.parametrize(
    ("signed_claim", "sent_claim", "named"),
    [
        (None, None, "signature does not match"),
        ("UNSIGNED-PAYLOAD", "UNSIGNED-PAYLOAD", "x-amz-content-sha256"),
        (ORIGINAL_HASH, ORIGINAL_HASH, "x-amz-content-sha256"),
        (ORIGINAL_HASH, TAMPERED_HASH, "signature does not match"),
        ("UNSIGNED-PAYLOAD", TAMPERED_HASH, "signature does not match"),
        (None, TAMPERED_HASH, "signature does not match"),
    ],
    ids=[
        "no-claim",
        "unsigned-payload",
        "hash-of-the-original-body",
        "claim-rewritten-to-the-new-body",
        "unsigned-payload-rewritten-to-the-new-body",
        "claim-added-for-the-new-body",
    ],
)
def test_a_body_changed_after_signing_is_forbidden_whatever_it_claims(
    server: DevServer, signed_claim: str | None, sent_claim: str | None, named: str
) -> None:
    """The signature covers the body's hash, computed by maas from the body it received: a body
    changed after signing is refused, whether x-amz-content-sha256 was signed as the original
    hash or as UNSIGNED-PAYLOAD, left out, or rewritten on the way."""
    status, answer = tampered_after_signing(server, signed_claim, sent_claim)
    assert status == 403, answer
    assert named in answer["error"], answer


def test_a_request_signed_for_another_region_is_forbidden(server: DevServer) -> None:
    """maas dev serves in us-east-1: a signature for an API in eu-west-1 is not one for this API."""
    status, answer = send(
        server, "POST", "/v2/models/digits/infer", BODY, secret="testing", region="eu-west-1"
    )
    assert (status, answer) == (
        403,
        {"error": "signed for region 'eu-west-1', but this API is in 'us-east-1'"},
    )


def test_a_request_signed_for_another_service_is_forbidden(server: DevServer) -> None:
    """A signature made for S3 by the same identity is not one for execute-api."""
    status, answer = send(server, "GET", "/registry/models", secret="testing", service="s3")
    assert (status, answer) == (403, {"error": "signed for service 's3', not 'execute-api'"})


def test_a_credential_scope_dated_1999_is_forbidden(server: DevServer) -> None:
    """A client whose signing key is for 1 January 1999 while its X-Amz-Date says now is
    refused, and told which dates disagree."""
    path = "/v2/models/digits/infer"
    for scope_date, expected in ((None, 200), ("19990101", 403)):
        headers = sign_with_scope_date(
            signed_headers(server, "POST", path, BODY),
            method="POST",
            url=f"{server.url}{path}",
            body=BODY.encode(),
            scope_date=scope_date,
        )
        status, answer = send_signed(server, "POST", path, BODY, headers)
        assert status == expected, answer
    assert answer["error"].startswith("the credential scope is dated 19990101, but X-Amz-Date is ")


def signed_headers(server: DevServer, method: str, path: str, body: str) -> dict[str, str]:
    headers = {"content-type": "application/json", "host": f"127.0.0.1:{server.port}"}
    request = AWSRequest(method=method, url=f"{server.url}{path}", data=body.encode(), headers=headers)
    SigV4Auth(Credentials("testing", "testing"), "execute-api", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def send_signed(
    server: DevServer, method: str, path: str, body: str, headers: dict[str, str]
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(method, path, body.encode(), headers)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer


def test_the_release_client_signs_its_requests(server: DevServer) -> None:
    version, outputs, _ = OipHttpClient(server.url, sign=True, region="us-east-1").infer(
        "digits", "prod", {"input": np.zeros((1, 64), dtype=np.float32)}
    )
    assert version == "1"
    assert "label" in outputs


def test_an_alias_change_signed_by_a_principal_is_recorded_as_made_by_it(server: DevServer) -> None:
    """The gateway passes on who signed, as API Gateway's IAM authorization does, and the
    registry's history names them."""
    status, alias = send(
        server, "PUT", "/registry/models/digits/aliases/audited", json.dumps({"version": 1}), secret="testing"
    )
    assert status == 200, alias
    assert alias["updated_by"] == "arn:aws:iam::000000000000:user/testing"
    status, history = send(server, "GET", "/registry/models/digits/aliases/audited/history", secret="testing")
    assert [change["by"] for change in history["history"]] == ["arn:aws:iam::000000000000:user/testing"]
