"""HTTP/1.1 request heads, read strictly, and responses, written plainly, for the local gateway.

Every request has one framing or is refused (RFC 9112 section 6.3): a Content-Length that
is not plain digits, two of them, or one beside a Transfer-Encoding would let a server and a
proxy in front of it disagree on where the body ends, and the rest of the body run as a
second request (request smuggling). Python's `int()` reads '+79', '1_0' and ' 10', which is
why nothing here goes through it before a regular expression has said yes.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maas.local.events import HttpResponse

MAX_HEAD_BYTES = 64 * 1024  # request line and headers, as http.server's line limit
MAX_HEADERS = 100  # as http.client's

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") (\S+) (HTTP/[0-9]\.[0-9])")
_HEADER_NAME = re.compile(_TOKEN)
# Stricter than RFC 9110's optional whitespace: clients send "Content-Length: 10", and any
# other spelling is one that two parsers can read differently.
_CONTENT_LENGTH = re.compile(rb"[ \t]?([0-9]{1,18})")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class HttpError(Exception):
    """A request refused before it reaches a function: its status and what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str  # the path and query, as sent
    version: str  # HTTP/1.1 or HTTP/1.0
    headers: dict[str, str]  # lower-cased names; repeated ones joined, as API Gateway joins them
    content_length: int
    keep_alive: bool
    expects_continue: bool

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.target} {self.version}"


@dataclass(frozen=True)
class Request:
    head: RequestHead
    body: bytes
    client: str  # the client's IP address


def parse_head(head: bytes) -> RequestHead:
    """The request line and headers in `head` (without the blank line that ends them).

    Raises HttpError: 400 for anything malformed or ambiguous, 411 for a chunked body, 417 for
    an expectation other than 100-continue, 431 for too many headers, 505 for a version other
    than HTTP/1.0 or 1.1.
    """
    if head.count(b"\n") != head.count(b"\r\n") or head.count(b"\r") != head.count(b"\r\n"):
        raise HttpError(400, "every line of the request head must end with CRLF (a bare CR or LF was sent)")
    request_line, *lines = head.split(b"\r\n")
    method, target, version = _request_line(request_line)
    if len(lines) > MAX_HEADERS:
        raise HttpError(431, f"more than {MAX_HEADERS} header fields")
    fields = [_header(line) for line in lines]
    headers: dict[str, str] = {}
    for name, value in fields:
        text = value.strip(b" \t").decode("latin-1")
        separator = "; " if name == "cookie" else ", "
        headers[name] = f"{headers[name]}{separator}{text}" if name in headers else text
    hosts = sum(1 for name, _ in fields if name == "host")
    if hosts > 1 or (hosts == 0 and version == "HTTP/1.1"):
        raise HttpError(400, f"an HTTP/1.1 request needs exactly one Host header ({hosts} sent)")
    connection = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    expectation = headers.get("expect", "").lower()
    if expectation not in ("", "100-continue"):
        raise HttpError(417, f"Expect '{headers['expect']}' is not supported (only 100-continue)")
    return RequestHead(
        method=method,
        target=target,
        version=version,
        headers=headers,
        content_length=_content_length(fields),
        keep_alive="close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection),
        expects_continue=expectation == "100-continue",
    )


def _request_line(line: bytes) -> tuple[str, str, str]:
    matched = _REQUEST_LINE.fullmatch(line)
    if matched is None:
        raise HttpError(400, "malformed request line: expected 'METHOD /path HTTP/1.1'")
    method, target, version = (part.decode("latin-1") for part in matched.groups())
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505, f"{version} is not supported: send HTTP/1.1")
    if not target.startswith("/"):
        raise HttpError(400, f"the request target must be a path starting with '/', not {target[:80]!r}")
    return method, target, version


def _header(line: bytes) -> tuple[str, bytes]:
    if line[:1] in (b" ", b"\t"):
        raise HttpError(400, "folded header lines (obs-fold) are not accepted: send each header on one line")
    name, colon, value = line.partition(b":")
    if not colon or _HEADER_NAME.fullmatch(name) is None:
        shown = line[:60].decode("latin-1")
        raise HttpError(
            400, f"malformed header line {shown!r}: a header name, then ':' with no space before it"
        )
    if _CONTROL.search(value):
        raise HttpError(400, f"the {name.decode()} header holds a control character")
    return name.decode("ascii").lower(), value


def _content_length(fields: list[tuple[str, bytes]]) -> int:
    lengths = [value for name, value in fields if name == "content-length"]
    encodings = [
        value.strip(b" \t").decode("latin-1") for name, value in fields if name == "transfer-encoding"
    ]
    if encodings and lengths:
        raise HttpError(
            400, "Content-Length and Transfer-Encoding together: send the body with Content-Length only"
        )
    if encodings:
        if any("chunked" in encoding.lower() for encoding in encodings):
            raise HttpError(411, "chunked request bodies are not supported, send Content-Length")
        raise HttpError(
            400, f"Transfer-Encoding '{', '.join(encodings)}' is not supported: send Content-Length"
        )
    if not lengths:
        return 0
    if len(lengths) > 1:
        raise HttpError(400, f"{len(lengths)} Content-Length headers: send exactly one")
    matched = _CONTENT_LENGTH.fullmatch(lengths[0])
    if matched is None:
        shown = lengths[0].removeprefix(b" ").decode("latin-1")
        raise HttpError(400, f"Content-Length {shown!r} is not a number of bytes: send digits only, once")
    return int(matched[1])


def serialize(response: HttpResponse, *, head: RequestHead | None, close: bool) -> bytes:
    """The bytes of `response` as an answer to `head` (None: to a request that could not be read)."""
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    for name, value in response.headers.items():
        # A function's header with a line break in it would write headers of its own choosing.
        if name.lower() in ("content-length", "connection", "transfer-encoding") or not _safe(name, value):
            continue
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(response.body)}")
    lines.append(f"Date: {_http_date(int(time.time()))}")
    if close:
        lines.append("Connection: close")
    elif head is not None and head.version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    encoded = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")
    if head is not None and head.method == "HEAD":
        return encoded
    return encoded + response.body


@functools.lru_cache(maxsize=1)
def _http_date(second: int) -> str:
    """`second` as an HTTP date: formatted once, for every answer given within it."""
    return formatdate(second, usegmt=True)


def _safe(name: str, value: str) -> bool:
    return _HEADER_NAME.fullmatch(name.encode("latin-1", errors="replace")) is not None and not any(
        character in value for character in "\r\n\x00"
    )
