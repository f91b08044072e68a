"""IAM auth for `maas dev --auth iam`: requests must carry a valid SigV4 signature for
`execute-api` in the API's region, as API Gateway's IAM authorization requires of every
deployed route.

The credential scope must name this API's region and service and the day of X-Amz-Date,
which must be within 15 minutes of now. The signature is then recomputed with botocore's
own signer over the headers the client signed, at the time it signed, and over the body
received, and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;\-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
MAX_SKEW_SECONDS = 15 * 60  # what AWS allows between the signing time and now
LOCAL_ACCOUNT = "000000000000"  # the account the local gateway's events name


@dataclass(frozen=True)
class Refusal:
    status: int  # 401 without credentials, 403 with wrong ones
    message: str


class SigV4Verifier:
    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        service: str = "execute-api",
        *,
        region: str = "us-east-1",
        principal_arn: str | None = None,
    ) -> None:
        """`principal_arn`: who the credentials belong to, as API Gateway tells the function
        (default: an IAM user named after the access key in the local account)."""
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.service = service
        self.region = region
        self.principal_arn = principal_arn or f"arn:aws:iam::{LOCAL_ACCOUNT}:user/{access_key_id}"

    def authorizer_context(self) -> dict[str, object]:
        """`requestContext.authorizer` of an event for a request this verifier accepted: what
        API Gateway's IAM authorization passes on about the caller."""
        return {
            "iam": {
                "accessKey": self.access_key_id,
                "accountId": LOCAL_ACCOUNT,
                "callerId": self.access_key_id,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": self.principal_arn,
                "userId": self.access_key_id,
            }
        }

    def check(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Refusal | None:
        """None if the request is signed by the known credentials, else why it is refused."""
        lowered = {name.lower(): value for name, value in headers.items()}
        header = lowered.get("authorization")
        if not header:
            return Refusal(
                401, "missing Authorization: every route needs a SigV4 (IAM) signature for execute-api"
            )
        parsed = _AUTHORIZATION.match(header.strip())
        if parsed is None:
            return Refusal(403, "the Authorization header is not an AWS4-HMAC-SHA256 signature")
        problem = (
            self._scope_problem(parsed) or _time_problem(parsed, lowered) or _payload_problem(lowered, body)
        )
        if problem is not None:
            return problem
        request = AWSRequest(
            method=method,
            url=url,
            data=body,
            headers={name: lowered[name] for name in parsed["signed"].split(";")},
        )
        request.context["timestamp"] = lowered["x-amz-date"]
        signer = SigV4Auth(Credentials(self.access_key_id, self.secret_access_key), self.service, self.region)
        expected = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request
        )
        if not hmac.compare_digest(expected, parsed["signature"]):
            return Refusal(
                403, "the request signature does not match: check the secret key and what was signed"
            )
        return None

    def _scope_problem(self, parsed: re.Match[str]) -> Refusal | None:
        """What is wrong with who signed, and for which region and service."""
        if parsed["key"] != self.access_key_id:
            return Refusal(403, f"access key '{parsed['key']}' is not allowed here")
        if parsed["region"] != self.region:
            return Refusal(403, f"signed for region '{parsed['region']}', but this API is in '{self.region}'")
        if parsed["service"] != self.service:
            return Refusal(403, f"signed for service '{parsed['service']}', not '{self.service}'")
        return None


def _time_problem(parsed: re.Match[str], lowered: dict[str, str]) -> Refusal | None:
    """What is wrong with the signed headers and the signing time, before the signature is checked."""
    signed = parsed["signed"].split(";")
    missing = [name for name in signed if name not in lowered]
    if "x-amz-date" not in lowered or missing:
        return Refusal(
            403, f"signed header(s) missing from the request: {', '.join(missing) or 'x-amz-date'}"
        )
    try:
        signed_at = datetime.strptime(lowered["x-amz-date"], SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        return Refusal(403, "X-Amz-Date is not a SigV4 timestamp")
    # The signing key is derived from the scope's date: botocore would rebuild the scope
    # from X-Amz-Date, so a disagreement would otherwise read as a wrong secret.
    if parsed["date"] != lowered["x-amz-date"][:8]:
        return Refusal(
            403,
            f"the credential scope is dated {parsed['date']}, but X-Amz-Date is {lowered['x-amz-date']}: "
            "the two must be the same day",
        )
    if abs((datetime.now(UTC) - signed_at).total_seconds()) > MAX_SKEW_SECONDS:
        return Refusal(403, "the signature has expired (signed more than 15 minutes from now)")
    return None


def _payload_problem(lowered: dict[str, str], body: bytes) -> Refusal | None:
    """botocore signs the X-Amz-Content-SHA256 header in place of the body when it is present,
    so a value that is not the body's hash (UNSIGNED-PAYLOAD among them) would let the body
    change after signing: API Gateway signs payloads, and so must its clients here."""
    claimed = lowered.get("x-amz-content-sha256")
    if claimed is not None and claimed.lower() != hashlib.sha256(body).hexdigest():
        return Refusal(403, "x-amz-content-sha256 is not the SHA-256 of the body: the payload must be signed")
    return None
