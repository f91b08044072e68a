"""API Gateway HTTP API (payload format 2.0) events and responses, as AWS builds them.

The local gateway uses these so that a request served on a laptop reaches the
Lambda handler in exactly the shape it has in the cloud.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

# Content types API Gateway passes as text; anything else arrives base64-encoded.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")
# Lambda refuses a synchronous invocation event or response over 6 MB (6,291,456 bytes).
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def http_api_event(
    *,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str = "127.0.0.1",
    stage: str = "$default",
) -> dict[str, Any]:
    """The event API Gateway sends a Lambda proxy integration for one HTTP request."""
    raw_path, _, query = target.partition("?")
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = lowered.get("content-type", "")
    # A text body that is not UTF-8 travels base64-encoded, as binary does: decoding it with
    # replacement characters would hand the function other bytes than the client sent.
    as_text = not body or (content_type.startswith(_TEXT_TYPES) and _is_utf8(body))
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        # API Gateway decodes percent-escapes in the path it passes on.
        "rawPath": unquote(raw_path),
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": lowered.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": unquote(raw_path),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": not as_text,
    }
    if query:
        event["queryStringParameters"] = {key: ",".join(values) for key, values in parse_qs(query).items()}
    if "cookie" in lowered:
        event["cookies"] = [part.strip() for part in lowered["cookie"].split(";")]
    if body:
        event["body"] = body.decode("utf-8") if as_text else base64.b64encode(body).decode()
    return event


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def http_response(result: Any) -> HttpResponse:
    """The HTTP response API Gateway makes of what a Lambda handler returned."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # Payload 2.0 lets a handler return a bare value, sent as a JSON 200.
        return HttpResponse(200, {"content-type": "application/json"}, json.dumps(result).encode())
    headers = {name.lower(): str(value) for name, value in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = ", ".join(str(value) for value in values)
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return HttpResponse(int(result["statusCode"]), headers, raw)


def payload_size(payload: Any) -> int:
    """The bytes of `payload` (an event, or what a handler returned) as JSON on its way to or from
    Lambda: a binary body counts base64-encoded and a text body escaped. The most compact
    encoding is counted, so that nothing AWS would take is refused here."""
    return len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
