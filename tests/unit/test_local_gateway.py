"""The local gateway holds under abuse, in-process with a fake function behind it: hostile
framing (request smuggling) is refused, slow and idle clients are timed out, connections are
capped, and Lambda's 6 MB limits apply to the invocation event and to the function's answer."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import resource
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from maas.local.gateway import LocalGateway
from maas.local.http_server import ServerLimits

MB = 1024 * 1024


class Function:
    """A Lambda function that records its events and answers with `answer` (default: the path)."""

    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.answer = answer
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        if self.answer is not None:
            return self.answer
        return {"statusCode": 200, "body": json.dumps({"path": event["rawPath"]})}

    @property
    def paths(self) -> list[str]:
        return [event["rawPath"] for event in self.events]


@contextlib.contextmanager
def serving(function: Function, **limits: Any) -> Iterator[LocalGateway]:
    gateway = LocalGateway("127.0.0.1", 0, {"/": function}, limits=ServerLimits(**limits))
    thread = threading.Thread(target=gateway.serve_forever, daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        gateway.shutdown()
        gateway.server_close()
        thread.join(10)


def connect(gateway: LocalGateway, timeout: float = 10) -> socket.socket:
    connection = socket.create_connection(gateway.server_address[:2], timeout=timeout)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or 10 s pass)."""
    received = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := connection.recv(1 << 20):
            received += chunk
    return received


def responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP responses in `raw`: status, lower-cased headers, body."""
    found = []
    while raw:
        head, _, raw = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines)
        length = int(headers.get("content-length", "0"))
        body, raw = raw[:length], raw[length:]
        found.append((int(status_line.split(" ")[1]), headers, body))
    return found


def exchange(gateway: LocalGateway, data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    with connect(gateway) as connection:
        connection.sendall(data)
        return responses(read_until_closed(connection))


def get(path: str, *headers: bytes) -> bytes:
    return (
        b"GET "
        + path.encode()
        + b" HTTP/1.1\r\nHost: local\r\n"
        + b"".join(h + b"\r\n" for h in headers)
        + b"\r\n"
    )


def post(*header_lines: bytes, body: bytes = b"", path: str = "/v2/models/m/infer") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: local\r\n".encode()
    return head + b"".join(line + b"\r\n" for line in header_lines) + b"\r\n" + body


def error_of(response: tuple[int, dict[str, str], bytes]) -> str:
    _, headers, body = response
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert set(answer) == {"error"}
    return str(answer["error"])


# A request hidden in the body: served as a second request by a server that reads less of the
# body than a proxy in front of it would (or the other way round).
HIDDEN = get("/smuggled")
N = len(HIDDEN)

SMUGGLING = {
    "plus-sign": ([b"Content-Length: +%d" % N], "Content-Length"),
    "underscore": ([b"Content-Length: 1_0"], "Content-Length"),
    "space-before-the-number": ([b"Content-Length:  %d" % N], "Content-Length"),
    "vertical-tab-before-the-number": ([b"Content-Length: \x0b%d" % N], "Content-Length"),
    "negative": ([b"Content-Length: -1"], "Content-Length"),
    "a-list": ([b"Content-Length: %d, %d" % (N, N)], "Content-Length"),
    "two-different-content-lengths": ([b"Content-Length: 0", b"Content-Length: %d" % N], "Content-Length"),
    "two-equal-content-lengths": ([b"Content-Length: %d" % N, b"Content-Length: %d" % N], "Content-Length"),
    "content-length-and-chunked": (
        [b"Content-Length: %d" % N, b"Transfer-Encoding: chunked"],
        "Transfer-Encoding",
    ),
    "content-length-and-identity": (
        [b"Content-Length: %d" % N, b"Transfer-Encoding: identity"],
        "Transfer-Encoding",
    ),
    "transfer-encoding-alone": ([b"Transfer-Encoding: gzip"], "Transfer-Encoding"),
    "space-before-the-colon": ([b"Content-Length : %d" % N], "header"),
    "folded-onto-a-second-line": ([b"Content-Length:", b" %d" % N], "folded"),
}


@pytest.mark.parametrize("case", list(SMUGGLING), ids=list(SMUGGLING))
def test_a_body_behind_a_hostile_content_length_is_refused_and_never_served(case: str) -> None:
    header_lines, named = SMUGGLING[case]
    function = Function()
    with serving(function) as gateway:
        answers = exchange(gateway, post(*header_lines, body=HIDDEN))
    assert [status for status, _, _ in answers] == [400], answers
    assert named in error_of(answers[0])
    assert answers[0][1]["connection"] == "close"
    assert function.paths == []  # neither the request nor the one hidden in it


def test_chunked_bodies_are_refused_asking_for_a_content_length() -> None:
    function = Function()
    with serving(function) as gateway:
        answers = exchange(gateway, post(b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n\r\n"))
    assert [status for status, _, _ in answers] == [411]
    assert "send Content-Length" in error_of(answers[0])
    assert function.paths == []


def test_a_plain_content_length_with_or_without_a_space_is_read_exactly() -> None:
    function = Function()
    with serving(function) as gateway:
        answers = exchange(
            gateway,
            post(b"Content-Type: text/plain", b"Content-Length:5", body=b"hello")
            + post(b"Content-Type: text/plain", b"Content-Length: 5", b"Connection: close", body=b"world"),
        )
    assert [status for status, _, _ in answers] == [200, 200]
    assert [event["body"] for event in function.events] == ["hello", "world"]


def test_pipelined_keep_alive_requests_are_each_served_once_in_order() -> None:
    function = Function()
    with serving(function) as gateway:
        answers = exchange(gateway, get("/v2/one") + get("/v2/two") + get("/v2/three", b"Connection: close"))
    assert [json.loads(body)["path"] for _, _, body in answers] == ["/v2/one", "/v2/two", "/v2/three"]
    assert function.paths == ["/v2/one", "/v2/two", "/v2/three"]


@pytest.mark.parametrize(
    ("request_bytes", "status", "named"),
    [
        (b"GET /v2/health/live HTTP/1.1\r\n\r\n", 400, "Host"),
        (b"GET /v2/health/live HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host"),
        (b"GET /v2/health/live HTTP/2.0\r\nHost: a\r\n\r\n", 505, "HTTP/2.0"),
        (b"GET  /v2/health/live HTTP/1.1\r\nHost: a\r\n\r\n", 400, "request line"),
        (b"GET /v2/health/live HTTP/1.1\nHost: a\r\n\r\n", 400, "CRLF"),
        (b"GET /v2/health/live HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400, "CRLF"),
        (b"GET /v2/health/live HTTP/1.1\r\nHost: a\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431, "64 KiB"),
        (get("/v2/health/live", *[b"X-%d: 1" % n for n in range(101)]), 431, "100 header"),
    ],
    ids=[
        "no-host",
        "two-hosts",
        "http-2",
        "double-space",
        "bare-lf",
        "bare-cr",
        "huge-header",
        "101-headers",
    ],
)
def test_a_malformed_request_head_is_refused_naming_the_problem(
    request_bytes: bytes, status: int, named: str
) -> None:
    function = Function()
    with serving(function) as gateway:
        answers = exchange(gateway, request_bytes)
    assert [answered for answered, _, _ in answers] == [status], answers
    assert named in error_of(answers[0])
    assert function.paths == []


def test_a_client_that_expects_100_continue_is_told_to_go_on_and_then_served() -> None:
    function = Function()
    with serving(function) as gateway, connect(gateway) as connection:
        connection.sendall(
            post(
                b"Content-Type: text/plain",
                b"Content-Length: 5",
                b"Expect: 100-continue",
                b"Connection: close",
            )
        )
        assert connection.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        connection.sendall(b"hello")
        answers = responses(read_until_closed(connection))
    assert [status for status, _, _ in answers] == [200]
    assert function.events[0]["body"] == "hello"


def test_a_body_over_the_limit_that_expects_100_continue_is_refused_before_it_is_sent() -> None:
    function = Function()
    with serving(function) as gateway, connect(gateway) as connection:
        connection.sendall(post(b"Content-Length: %d" % (7 * MB), b"Expect: 100-continue"))
        answers = responses(read_until_closed(connection))
    assert [status for status, _, _ in answers] == [413]
    assert "6 MB" in error_of(answers[0])
    assert function.paths == []


# Timeouts: the gateway gives each client a bounded time, and answers 408 when it can.


def test_a_client_that_connects_and_sends_nothing_gets_a_408_after_the_idle_timeout() -> None:
    with serving(Function(), idle_timeout=0.5) as gateway, connect(gateway) as connection:
        started = time.monotonic()
        answers = responses(read_until_closed(connection))
        waited = time.monotonic() - started
    assert [status for status, _, _ in answers] == [408]
    assert "no request within 0.5 s" in error_of(answers[0])
    assert 0.4 < waited < 5


def test_a_keep_alive_connection_idle_after_its_answer_is_closed_without_a_word() -> None:
    """A 408 there could be read as the answer to a request the client is sending just then."""
    with serving(Function(), idle_timeout=0.5) as gateway, connect(gateway) as connection:
        connection.sendall(get("/v2/health/live"))
        received = read_until_closed(connection)
    assert [status for status, _, _ in responses(received)] == [200]


def test_a_client_that_stops_halfway_through_its_headers_gets_a_408() -> None:
    function = Function()
    with serving(function, request_timeout=0.5) as gateway, connect(gateway) as connection:
        connection.sendall(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: local\r\nContent-Le")
        answers = responses(read_until_closed(connection))
    assert [status for status, _, _ in answers] == [408]
    assert "did not arrive within 0.5 s" in error_of(answers[0])
    assert function.paths == []


def test_a_client_that_stops_halfway_through_its_body_gets_a_408() -> None:
    function = Function()
    with serving(function, request_timeout=0.5) as gateway, connect(gateway) as connection:
        connection.sendall(post(b"Content-Length: 100", body=b"x" * 10))
        answers = responses(read_until_closed(connection))
    assert [status for status, _, _ in answers] == [408]
    assert "did not arrive within 0.5 s" in error_of(answers[0])
    assert function.paths == []


def test_a_client_that_trickles_its_headers_a_byte_at_a_time_is_cut_off_all_the_same() -> None:
    """Slowloris: every byte arrives well within any per-read timeout, the request never does."""
    with serving(Function(), request_timeout=1.0) as gateway, connect(gateway) as connection:
        connection.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: local\r\nX-Pad: ")
        started = time.monotonic()
        with contextlib.suppress(OSError):
            while time.monotonic() - started < 5:
                connection.send(b"a")
                time.sleep(0.05)
        cut_after = time.monotonic() - started
        answers = responses(read_until_closed(connection))
    assert [status for status, _, _ in answers] == [408]
    assert cut_after < 4


def test_a_client_that_never_reads_its_answer_is_dropped_and_others_are_served() -> None:
    big = Function({"statusCode": 200, "body": "x" * (5 * MB)})
    with serving(big, request_timeout=0.5) as gateway:
        stalled = connect(gateway)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for _ in range(3):
            stalled.sendall(get("/v2/big"))
        time.sleep(1.5)
        big.answer = None
        answers = exchange(gateway, get("/v2/health/live", b"Connection: close"))
        stalled.close()
    assert [status for status, _, _ in answers] == [200]


# The cap on connections: idle ones make room, busy ones are refused with a 503.


def test_at_the_connection_cap_the_longest_idle_connection_makes_room_for_a_new_one() -> None:
    with serving(Function(), max_connections=8) as gateway:
        idle = [connect(gateway) for _ in range(8)]
        time.sleep(0.2)
        answers = exchange(gateway, get("/v2/health/live", b"Connection: close"))
        oldest = responses(read_until_closed(idle[0]))  # returns once the server has closed it
        for connection in idle:
            connection.close()
    assert [status for status, _, _ in answers] == [200]
    assert [status for status, _, _ in oldest] in ([], [408])


def test_at_the_connection_cap_with_every_connection_mid_request_a_new_one_gets_a_503() -> None:
    with serving(Function(), max_connections=8) as gateway:
        busy = [connect(gateway) for _ in range(8)]
        for connection in busy:
            connection.sendall(b"GET /v2/health/live HTTP/1.1\r\n")
        time.sleep(0.2)
        answers = exchange(gateway, get("/v2/health/live"))
        for connection in busy:
            connection.close()
    assert [status for status, _, _ in answers] == [503]
    assert "8 connections" in error_of(answers[0])


def test_1000_idle_connections_and_4_slow_bodies_do_not_keep_health_from_answering() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2100:
        pytest.skip(f"2,100 open files needed (both ends in one process), the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2100), hard))
    with serving(Function()) as gateway:
        idle = [connect(gateway) for _ in range(1000)]
        slow = [connect(gateway) for _ in range(4)]
        for connection in slow:
            connection.sendall(post(b"Content-Length: 1000000", body=b"x" * 1000))
        started = time.monotonic()
        answers = exchange(gateway, get("/v2/health/live", b"Connection: close"))
        latency = time.monotonic() - started
        for connection in idle + slow:
            connection.close()
    assert [status for status, _, _ in answers] == [200]
    assert latency < 5


# Lambda's 6 MB limits, on the invocation event and on the function's response.


def test_a_binary_body_under_6_mb_that_is_over_6_mb_once_base64_encoded_is_refused_with_the_event_limit() -> (
    None
):
    function = Function()
    body = bytes(range(256)) * (46 * MB // 2560)  # 4.6 MB, about 6.1 MB in base64
    with serving(function) as gateway:
        answers = exchange(
            gateway,
            post(
                b"Content-Type: application/octet-stream",
                b"Content-Length: %d" % len(body),
                b"Connection: close",
                body=body,
            ),
        )
    assert [status for status, _, _ in answers] == [413]
    error = error_of(answers[0])
    assert "invocation event" in error
    assert "6 MB" in error
    assert function.paths == []


def test_a_json_body_under_6_mb_that_is_over_6_mb_once_escaped_in_the_event_is_refused() -> None:
    function = Function()
    body = json.dumps({"text": '"' * (2 * MB)}).encode()  # 2 MB of \\" pairs, escaped again in the event
    with serving(function) as gateway:
        answers = exchange(
            gateway,
            post(
                b"Content-Type: application/json",
                b"Content-Length: %d" % len(body),
                b"Connection: close",
                body=body,
            ),
        )
    assert [status for status, _, _ in answers] == [413]
    assert "invocation event" in error_of(answers[0])
    assert function.paths == []


def test_a_binary_body_whose_event_fits_in_6_mb_is_served() -> None:
    function = Function()
    body = b"\x00" * (4 * MB)
    with serving(function) as gateway:
        answers = exchange(
            gateway,
            post(
                b"Content-Type: application/octet-stream",
                b"Content-Length: %d" % len(body),
                b"Connection: close",
                body=body,
            ),
        )
    assert [status for status, _, _ in answers] == [200]
    assert base64.b64decode(function.events[0]["body"]) == body


@pytest.mark.parametrize(
    "answer",
    [
        {"statusCode": 200, "body": "x" * (7 * MB)},
        {
            "statusCode": 200,
            "body": base64.b64encode(b"\x00" * (46 * MB // 10)).decode(),
            "isBase64Encoded": True,
        },
        {"statusCode": 200, "body": json.dumps({"quotes": '"' * (2 * MB)})},
    ],
    ids=["7-mb-text", "4.6-mb-binary-as-base64", "4-mb-of-escaped-quotes-escaped-again"],
)
def test_a_function_answer_over_6_mb_is_an_error_naming_the_response_limit(answer: dict[str, Any]) -> None:
    """In AWS, Lambda refuses a synchronous response over 6 MB and API Gateway answers 5xx."""
    with serving(Function(answer)) as gateway:
        answers = exchange(gateway, get("/v2/models/m/big", b"Connection: close"))
    assert [status for status, _, _ in answers] == [502]
    error = error_of(answers[0])
    assert "response" in error
    assert "6 MB" in error


def test_a_function_answer_just_under_6_mb_is_served_whole() -> None:
    body = "x" * (6 * MB - 1024)
    with serving(Function({"statusCode": 200, "body": body})) as gateway:
        answers = exchange(gateway, get("/v2/models/m/big", b"Connection: close"))
    assert [(status, len(answer)) for status, _, answer in answers] == [(200, len(body))]


def test_stopping_with_idle_and_busy_clients_connected_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ctrl-C while a keep-alive client waits and another's request runs: no traceback."""
    started = threading.Event()

    class Slow(Function):
        def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
            started.set()
            time.sleep(1)
            return super().__call__(event, context)

    with serving(Slow()) as gateway:
        idle = connect(gateway)
        idle.sendall(get("/v2/health/live"))
        responses(idle.recv(65536))
        busy = connect(gateway)
        busy.sendall(get("/v2/slow"))
        assert started.wait(5)
    idle.close()
    busy.close()
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []
