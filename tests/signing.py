"""SigV4 signatures that botocore will not make, for tests of what `maas dev --auth iam` refuses."""

from __future__ import annotations

import hashlib
import hmac

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign_with_scope_date(
    request_headers: dict[str, str], *, method: str, url: str, body: bytes, scope_date: str | None
) -> dict[str, str]:
    """`request_headers` (as botocore signed them, X-Amz-Date included) signed again, correctly,
    by the testing / testing identity for execute-api in us-east-1, with a credential scope dated
    `scope_date` (None: the day of X-Amz-Date). botocore always derives the scope's date from
    X-Amz-Date, so this signs by hand, as the SigV4 specification says."""
    amz_date = request_headers["X-Amz-Date"]
    unsigned = {name: value for name, value in request_headers.items() if name.lower() != "authorization"}
    request = AWSRequest(method=method, url=url, data=body, headers=unsigned)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials("testing", "testing"), "execute-api", "us-east-1")
    canonical = signer.canonical_request(request)
    scope = f"{scope_date or amz_date[:8]}/us-east-1/execute-api/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = b"AWS4testing"
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    signed_headers = signer.signed_headers(signer.headers_to_sign(request))
    authorization = (
        f"AWS4-HMAC-SHA256 Credential=testing/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
    return {**unsigned, "Authorization": authorization}
