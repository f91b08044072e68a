"""One API Gateway HTTP API (payload format 2.0) event as a request, and the Lambda proxy
response API Gateway expects back: the shapes Powertools' resolver read and wrote, kept
exactly, so that the gateway, `maas dev` and clients see no difference."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from maas.errors import InvalidInput

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class HttpRequest:
    """What a route reads of an event: method, path (without a named stage), lowercased
    headers, and the body's bytes."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> HttpRequest:
        context = event.get("requestContext") or {}
        path = event.get("rawPath") or "/"
        stage = context.get("stage", "$default")
        if stage != "$default":  # a named stage prefixes the raw path; routes do not name it
            path = path[len("/" + stage) :]
        headers = {key.lower(): value for key, value in (event.get("headers") or {}).items()}
        body = raw_body(event.get("body"), bool(event.get("isBase64Encoded")))
        return cls(
            method=(context.get("http") or {}).get("method", ""), path=path, headers=headers, body=body
        )


def raw_body(body: str | None, is_base64: bool) -> bytes:
    """The bytes of an event's body."""
    if body is None:
        return b""
    # surrogatepass: a lone surrogate in the event's text is refused by json_bytes as not UTF-8.
    return base64.b64decode(body) if is_base64 else body.encode("utf-8", "surrogatepass")


def json_bytes(body: bytes) -> bytes:
    """`body`, which is to be parsed as JSON; raises InvalidInput naming the first byte that
    is not UTF-8, as a JSON body must be UTF-8 (RFC 8259) and is not repaired."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"the request body is not UTF-8: byte {error.start} (0x{body[error.start]:02x}) "
            "cannot be decoded; a JSON body must be UTF-8"
        ) from None
    return body


def proxy_response(
    status: int, body: str | bytes, content_type: str = JSON, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """The Lambda proxy response: text as it is, bytes base64-encoded (API Gateway decodes them)."""
    binary = isinstance(body, bytes)
    return {
        "statusCode": status,
        "body": base64.b64encode(body).decode() if isinstance(body, bytes) else body,
        "isBase64Encoded": binary,
        "headers": {**(headers or {}), "Content-Type": content_type},
        "cookies": [],
    }


def error_response(status: int, message: str) -> dict[str, Any]:
    """`{"error": message}` with `status`: the one shape every error of the API takes."""
    return proxy_response(status, json.dumps({"error": message}))


__all__ = [
    "JSON",
    "OCTET_STREAM",
    "HttpRequest",
    "error_response",
    "json_bytes",
    "proxy_response",
    "raw_body",
]
