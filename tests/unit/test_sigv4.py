"""`maas dev --auth iam` checks SigV4 signatures as API Gateway's IAM authorization does: these
drive the verifier directly with requests botocore signed, in the same process, fast enough to
run for every mutant of maas/local/sigv4.py (tests/e2e/test_dev_auth.py does the same over HTTP)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, tzinfo
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from maas.local.sigv4 import Refusal, SigV4Verifier
from tests.signing import sign_with_scope_date

URL = "http://127.0.0.1:8080/v2/models/digits/infer"
BODY = json.dumps({"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [0.0, 1.0]}]})


def signed(
    body: str = BODY,
    *,
    url: str = URL,
    method: str = "POST",
    access_key: str = "testing",
    secret: str = "testing",
    service: str = "execute-api",
    region: str = "us-east-1",
    seconds_ago: float = 0,
    **extra_headers: str,
) -> dict[str, str]:
    """The headers botocore sends for this request, signed `seconds_ago` by a client's clock."""
    headers = {"content-type": "application/json", "host": "127.0.0.1:8080", **extra_headers}
    request = AWSRequest(method=method, url=url, data=body.encode(), headers=headers)
    signing_time = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=seconds_ago)
    with mock.patch("botocore.auth.get_current_datetime", return_value=signing_time):
        SigV4Auth(Credentials(access_key, secret), service, region).add_auth(request)
    return dict(request.headers.items())


def check(
    headers: dict[str, str], body: str = BODY, *, url: str = URL, method: str = "POST"
) -> Refusal | None:
    return SigV4Verifier("testing", "testing").check(method, url, headers, body.encode())


def test_a_request_signed_with_the_known_credentials_is_let_through() -> None:
    assert check(signed()) is None


def test_a_get_with_a_query_string_and_no_body_is_let_through() -> None:
    url = "http://127.0.0.1:8080/registry/models?limit=10&name=digits"
    assert check(signed("", url=url, method="GET"), "", url=url, method="GET") is None


def test_a_request_signed_for_another_region_is_forbidden_naming_both() -> None:
    """maas dev serves in us-east-1: a signature scoped to eu-west-1 is for another API, as in AWS."""
    refusal = check(signed(region="eu-west-1"))
    assert refusal == Refusal(403, "signed for region 'eu-west-1', but this API is in 'us-east-1'")


def test_a_verifier_in_another_region_takes_that_region_only() -> None:
    verifier = SigV4Verifier("testing", "testing", region="eu-west-1")
    assert verifier.check("POST", URL, signed(region="eu-west-1"), BODY.encode()) is None
    refusal = verifier.check("POST", URL, signed(), BODY.encode())
    assert refusal == Refusal(403, "signed for region 'us-east-1', but this API is in 'eu-west-1'")


def test_header_names_are_read_whatever_their_case() -> None:
    headers = {name.upper(): value for name, value in signed().items()}
    assert check(headers) is None


def test_a_request_without_authorization_needs_a_signature_401() -> None:
    refusal = check({"content-type": "application/json", "host": "127.0.0.1:8080"})
    assert refusal == Refusal(
        401, "missing Authorization: every route needs a SigV4 (IAM) signature for execute-api"
    )


def test_an_empty_authorization_header_is_a_missing_one() -> None:
    refusal = check({**signed(), "Authorization": ""})
    assert refusal is not None
    assert refusal.status == 401


def test_an_authorization_header_with_spaces_around_it_is_still_read() -> None:
    headers = signed()
    headers["Authorization"] = f"  {headers['Authorization']} "
    assert check(headers) is None


@pytest.mark.parametrize(
    "authorization",
    ["Basic dGVzdGluZzp0ZXN0aW5n", "Bearer token", "AWS4-HMAC-SHA256 Credential=testing/20240101"],
)
def test_an_authorization_that_is_not_sigv4_is_forbidden(authorization: str) -> None:
    refusal = check({**signed(), "Authorization": authorization})
    assert refusal == Refusal(403, "the Authorization header is not an AWS4-HMAC-SHA256 signature")


def test_a_wrong_secret_is_forbidden_without_saying_what_the_secret_is() -> None:
    refusal = check(signed(secret="not-the-secret"))
    assert refusal == Refusal(
        403, "the request signature does not match: check the secret key and what was signed"
    )


def test_a_foreign_access_key_is_forbidden_by_name() -> None:
    refusal = check(signed(access_key="AKIAIOSFODNN7EXAMPLE"))
    assert refusal == Refusal(403, "access key 'AKIAIOSFODNN7EXAMPLE' is not allowed here")


def test_a_signature_for_another_service_is_forbidden() -> None:
    refusal = check(signed(service="s3"))
    assert refusal == Refusal(403, "signed for service 's3', not 'execute-api'")


def test_a_verifier_for_another_service_takes_that_service_only() -> None:
    verifier = SigV4Verifier("testing", "testing", service="lambda")
    assert verifier.check("POST", URL, signed(service="lambda"), BODY.encode()) is None
    refusal = verifier.check("POST", URL, signed(), BODY.encode())
    assert refusal == Refusal(403, "signed for service 'execute-api', not 'lambda'")


def test_a_signed_header_dropped_on_the_way_is_named() -> None:
    headers = signed(**{"x-trace": "abc"})
    del headers["x-trace"]
    refusal = check(headers)
    assert refusal == Refusal(403, "signed header(s) missing from the request: x-trace")


def test_every_dropped_signed_header_is_named() -> None:
    headers = signed(**{"x-one": "1", "x-two": "2"})
    del headers["x-one"], headers["x-two"]
    refusal = check(headers)
    assert refusal == Refusal(403, "signed header(s) missing from the request: x-one, x-two")


def test_a_request_without_its_signing_time_is_forbidden() -> None:
    headers = signed()
    del headers["X-Amz-Date"]
    refusal = check(headers)
    assert refusal == Refusal(403, "signed header(s) missing from the request: x-amz-date")


def test_a_request_dated_only_by_a_date_header_is_told_it_needs_x_amz_date() -> None:
    """SigV4 lets some clients date a request by `Date`; API Gateway, and so maas, wants X-Amz-Date."""
    headers = signed()
    headers["Date"] = "Mon, 01 Jan 2024 00:00:00 GMT"
    del headers["X-Amz-Date"]
    headers["Authorization"] = headers["Authorization"].replace(";x-amz-date", "")
    refusal = check(headers)
    assert refusal == Refusal(403, "signed header(s) missing from the request: x-amz-date")


def test_a_signing_time_that_is_not_a_sigv4_timestamp_is_forbidden() -> None:
    headers = {**signed(), "X-Amz-Date": "2024-01-01T00:00:00Z"}
    assert check(headers) == Refusal(403, "X-Amz-Date is not a SigV4 timestamp")


@pytest.mark.parametrize("seconds_ago", [15 * 60 + 5, 20 * 60, -(15 * 60 + 5), -20 * 60])
def test_a_signature_more_than_15_minutes_from_now_either_way_has_expired(seconds_ago: int) -> None:
    refusal = check(signed(seconds_ago=seconds_ago))
    assert refusal == Refusal(403, "the signature has expired (signed more than 15 minutes from now)")


@pytest.mark.parametrize("seconds_ago", [14 * 60 + 55, 10 * 60, -(14 * 60 + 55)])
def test_a_signature_within_the_15_minutes_aws_allows_is_let_through(seconds_ago: int) -> None:
    assert check(signed(seconds_ago=seconds_ago)) is None


def test_a_signature_exactly_15_minutes_old_is_still_let_through() -> None:
    """Refused is "more than 15 minutes from now": at 15 minutes to the second, it is served."""
    headers = signed()
    signed_at = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)

    class FifteenMinutesLater(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:
            return signed_at + timedelta(minutes=15)

    with mock.patch("maas.local.sigv4.datetime", FifteenMinutesLater):
        assert check(headers) is None
        assert check(signed(seconds_ago=5)) is not None


def test_a_body_changed_after_signing_is_forbidden() -> None:
    refusal = check(signed(), BODY.replace("1.0", "9.0"))
    assert refusal is not None
    assert (refusal.status, refusal.message) == (
        403,
        "the request signature does not match: check the secret key and what was signed",
    )


def test_a_signature_over_another_path_is_forbidden() -> None:
    headers = signed(url="http://127.0.0.1:8080/v2/models/other/infer")
    assert check(headers) is not None


@pytest.mark.parametrize("claimed", ["UNSIGNED-PAYLOAD", hashlib.sha256(b"another body").hexdigest()])
def test_a_content_hash_that_is_not_the_bodys_is_forbidden(claimed: str) -> None:
    refusal = check(signed(**{"x-amz-content-sha256": claimed}))
    assert refusal == Refusal(
        403, "x-amz-content-sha256 is not the SHA-256 of the body: the payload must be signed"
    )


def test_the_bodys_own_hash_as_content_hash_is_let_through_in_either_case() -> None:
    digest = hashlib.sha256(BODY.encode()).hexdigest()
    assert check(signed(**{"x-amz-content-sha256": digest})) is None
    assert check(signed(**{"x-amz-content-sha256": digest.upper()})) is None


def signed_with_scope_date(scope_date: str | None) -> dict[str, str]:
    return sign_with_scope_date(signed(), method="POST", url=URL, body=BODY.encode(), scope_date=scope_date)


def test_a_credential_scope_dated_today_signed_by_hand_is_let_through() -> None:
    """The hand signer of the next test signs as botocore does when the two dates agree."""
    assert check(signed_with_scope_date(None)) is None


def test_a_credential_scope_dated_1999_is_forbidden_even_with_a_fresh_x_amz_date() -> None:
    """The signing key is derived from the scope's date: a key made for 1999 signing a request
    dated now is refused, as AWS refuses it, and the answer names both dates."""
    headers = signed_with_scope_date("19990101")
    refusal = check(headers)
    assert refusal == Refusal(
        403,
        f"the credential scope is dated 19990101, but X-Amz-Date is {headers['X-Amz-Date']}: "
        "the two must be the same day",
    )


def test_a_credential_scope_that_names_no_date_is_not_a_signature() -> None:
    headers = signed()
    headers["Authorization"] = headers["Authorization"].replace("/us-east-1/", "x/us-east-1/", 1)
    assert check(headers) == Refusal(403, "the Authorization header is not an AWS4-HMAC-SHA256 signature")
