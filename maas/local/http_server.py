"""An HTTP/1.1 server on one asyncio event loop, for the local gateway: a waiting client costs
a socket, not a thread.

Connections are read on the loop; only a complete request goes to a thread (the executor a
subclass names for it), so idle keep-alive connections, slow uploads and clients that never
read their answers cannot hold the threads that run functions. Every wait is bounded
(`ServerLimits`): a connection that sends no request, a request that does not arrive whole,
and an answer that is not read in time are cut off, with a 408 where the client can still
read one. At the connection cap the longest-idle connection makes room; when none is idle,
the newcomer is answered 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from maas.local.events import HttpResponse
from maas.local.http1 import MAX_HEAD_BYTES, HttpError, Request, RequestHead, parse_head, serialize

if TYPE_CHECKING:
    from concurrent.futures import Executor

logger = logging.getLogger(__name__)

_READ_BYTES = 256 * 1024
_MAX_DISCARD_BYTES = 64 * 1024 * 1024  # past this, a refused body is not read to the end
_RESERVED_FILES = 128  # open files kept for everything but connections (models, moto, logs)


@dataclass(frozen=True)
class ServerLimits:
    idle_timeout: float = 60.0  # from connecting, or from the last answer, to a request's first byte
    request_timeout: float = 30.0  # from a request's first byte to its last; also to write an answer
    max_connections: int = 1024


class HttpServer:
    """Serves HTTP/1.1 on `host:port` (bound at once, so port 0 picks one) until `shutdown()`.
    Subclasses answer requests in `respond`, run in the executor `executor_for` names."""

    def __init__(self, host: str, port: int, *, limits: ServerLimits | None = None) -> None:
        self.limits = limits or ServerLimits()
        self.max_connections = _connection_cap(self.limits.max_connections)
        self._backlog = max(128, min(self.max_connections, 4096))
        self.socket = socket.create_server((host, port), backlog=self._backlog)
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gateway")
        self._connections: dict[_Connection, None] = {}  # in the order they connected
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._shutdown_requested = False
        self._stopped = threading.Event()
        self._idle = _error(408, f"no request within {self.limits.idle_timeout:g} s of connecting")
        self._late = _error(
            408,
            f"the request did not arrive within {self.limits.request_timeout:g} s of its first byte "
            "(headers and body)",
        )

    def check_head(self, head: RequestHead) -> HttpResponse | None:
        """An answer to give before the body is read (and then the connection closed), or None."""
        return None

    def executor_for(self, head: RequestHead) -> Executor:
        """The executor that runs `respond` for this request."""
        return self._pool

    def respond(self, request: Request) -> HttpResponse:
        raise NotImplementedError

    def serve_forever(self) -> None:
        """Serve on this thread until `shutdown()` is called from another."""
        try:
            asyncio.run(self._serve())
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop `serve_forever` and wait until it has returned."""
        with self._guard:
            self._shutdown_requested = True
            loop, stop = self._loop, self._stop
        if loop is None or stop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed already
            loop.call_soon_threadsafe(stop.set)
        self._stopped.wait()

    def server_close(self) -> None:
        self.socket.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _serve(self) -> None:
        with self._guard:
            if self._shutdown_requested:
                return
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(
            self._connected, sock=self.socket, backlog=self._backlog, limit=_READ_BYTES
        )
        sweeper = asyncio.create_task(self._sweep())
        try:
            await self._stop.wait()
        finally:
            sweeper.cancel()
            server.close()
            for connection in list(self._connections):
                connection.writer.transport.abort()

    async def _sweep(self) -> None:
        """Expire the connections past their deadline, a few times per shortest timeout: one
        timer for all, rather than one per wait of every request."""
        loop = asyncio.get_running_loop()
        tick = min(1.0, max(0.02, min(self.limits.idle_timeout, self.limits.request_timeout) / 10))
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            for connection in [c for c in self._connections if c.deadline <= now]:
                connection.expire()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(reader, writer)
        if len(self._connections) >= self.max_connections and not self._close_longest_idle():
            refusal = _error(
                503, f"all {self.max_connections} connections the gateway takes are mid-request: retry later"
            )
            writer.write(serialize(refusal, head=None, close=True))
            writer.close()
            return
        self._connections[connection] = None
        try:
            await self._converse(connection)
        except ConnectionError as error:
            logger.debug("client %s went away: %s", connection.client, error)
        except asyncio.CancelledError:
            # Stopping mid-request. Python 3.11's streams would log a cancelled task as an
            # unhandled exception (it asks for its exception without checking): end normally.
            logger.debug("stopped while serving %s", connection.client)
        finally:
            self._connections.pop(connection, None)
            writer.close()

    def _close_longest_idle(self) -> bool:
        idle = [connection for connection in self._connections if connection.idle_since is not None]
        if not idle:
            return False
        longest = min(idle, key=lambda connection: connection.idle_since or 0.0)
        self._connections.pop(longest, None)
        longest.writer.close()  # its reader sees the end of the stream and the exchange ends
        return True

    async def _converse(self, connection: _Connection) -> None:
        """Serve requests on `connection` one after another until it closes or must be closed."""
        loop = asyncio.get_running_loop()
        first = True
        while await self._wait_for_request(connection, first=first):
            first = False
            head: RequestHead | None = None
            connection.deadline_at(loop.time() + self.limits.request_timeout, answer=self._late)
            try:
                head = parse_head(await connection.read_head())
                early = self.check_head(head)
                if early is not None:
                    await self._send(connection, early, head, close=True)
                    if not head.expects_continue:  # so that the client reads the answer, not a reset
                        connection.deadline_at(loop.time() + self.limits.request_timeout)
                        await connection.discard(head.content_length)
                    return
                if head.expects_continue and head.content_length:
                    connection.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = await connection.read_exactly(head.content_length)
            except HttpError as error:
                await self._send(connection, _error(error.status, error.message), head, close=True)
                return
            connection.deadline_at(math.inf)  # the function's time is not the client's to keep
            request = Request(head, body, connection.client)
            started = loop.time()
            response = await loop.run_in_executor(self.executor_for(head), self._respond, request)
            await self._send(
                connection, response, head, close=not head.keep_alive, took_ms=(loop.time() - started) * 1000
            )
            if not head.keep_alive:
                return

    async def _wait_for_request(self, connection: _Connection, *, first: bool) -> bool:
        """Whether a request has begun to arrive within the idle timeout."""
        if connection.pending:
            return True
        connection.idle_since = asyncio.get_running_loop().time()
        # After an answer, a 408 could cross a request the client is sending: close quietly.
        connection.deadline_at(
            connection.idle_since + self.limits.idle_timeout, answer=self._idle if first else None
        )
        received = await connection.reader.read(_READ_BYTES)
        connection.idle_since = None
        connection.pending += received
        return bool(received)

    def _respond(self, request: Request) -> HttpResponse:
        try:
            return self.respond(request)
        except Exception:
            logger.exception("error answering %s", request.head.request_line)
            return _error(500, "Internal Server Error: the gateway failed (see the log)")

    async def _send(
        self,
        connection: _Connection,
        response: HttpResponse,
        head: RequestHead | None,
        *,
        close: bool,
        took_ms: float | None = None,
    ) -> None:
        connection.writer.write(serialize(response, head=head, close=close))
        logger.info("%s", request_log_line(connection.client, head, response, took_ms))
        if connection.writer.transport.get_write_buffer_size():
            # A client that does not read its answer in time is cut off (abort: close would wait).
            connection.deadline_at(
                asyncio.get_running_loop().time() + self.limits.request_timeout, abort=True
            )
            await connection.writer.drain()


def request_log_line(
    client: str, head: RequestHead | None, response: HttpResponse, took_ms: float | None
) -> str:
    """One console line per answer: who, what, the status, how long the function took, and the
    model and version that answered (`x-maas-model` headers), e.g.
    `127.0.0.1 POST /v2/models/digits/infer 200 3.1 ms digits v1`."""
    what = f"{head.method} {head.target}" if head is not None else "-"
    line = f"{client} {what} {response.status}"
    if took_ms is not None:
        line += f" {took_ms:.1f} ms"
    headers = {name.lower(): value for name, value in response.headers.items()}
    if "x-maas-model" in headers:
        line += f" {headers['x-maas-model']}"
        if "x-maas-model-version" in headers:
            line += f" v{headers['x-maas-model-version']}"
    return line


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.client = str(peer[0]) if peer else "-"
        self.pending = bytearray()  # received, not yet read as part of a request
        self.idle_since: float | None = None  # set while waiting for a request
        self.deadline = math.inf  # when the current wait ends (event loop time)
        self._answer: HttpResponse | None = None  # what to say when it ends, if anything
        self._abort = False

    def deadline_at(
        self, deadline: float, *, answer: HttpResponse | None = None, abort: bool = False
    ) -> None:
        """End the connection at `deadline` unless it is moved: with `answer` (a 408) if given,
        with a reset if `abort`, else quietly."""
        self.deadline, self._answer, self._abort = deadline, answer, abort

    def expire(self) -> None:
        self.deadline = math.inf
        if self._abort:
            self.writer.transport.abort()
            return
        if self._answer is not None:
            self.writer.write(serialize(self._answer, head=None, close=True))
            logger.info("%s", request_log_line(self.client, None, self._answer, None))
        self.writer.close()  # the waiting read sees the end of the stream

    async def read_head(self) -> bytes:
        """The next request head, without its blank line; the bytes after it stay pending."""
        searched = 0
        while True:
            while self.pending.startswith(b"\r\n"):  # RFC 9112: ignore empty lines before a request
                del self.pending[:2]
            end = self.pending.find(b"\r\n\r\n", max(0, searched - 3))
            if 0 <= end <= MAX_HEAD_BYTES:
                head = bytes(self.pending[:end])
                del self.pending[: end + 4]
                return head
            if b"\n\n" in self.pending:
                raise HttpError(400, "every line of the request head must end with CRLF (a bare LF was sent)")
            if len(self.pending) > MAX_HEAD_BYTES:
                raise HttpError(431, f"the request line and headers are over {MAX_HEAD_BYTES // 1024} KiB")
            searched = len(self.pending)
            await self._receive()

    async def read_exactly(self, length: int) -> bytes:
        while len(self.pending) < length:
            await self._receive(length - len(self.pending))
        body = bytes(self.pending[:length])
        del self.pending[:length]
        return body

    async def discard(self, length: int) -> None:
        """Read and drop `length` bytes of a refused body, if there are not too many of them."""
        if length > _MAX_DISCARD_BYTES:
            return
        remaining = length - len(self.pending)
        self.pending.clear()
        while remaining > 0:
            received = await self.reader.read(min(remaining, _READ_BYTES))
            if not received:
                return
            remaining -= len(received)

    async def _receive(self, wanted: int = _READ_BYTES) -> None:
        received = await self.reader.read(max(wanted, _READ_BYTES))
        if not received:
            raise ConnectionError("the client closed the connection mid-request")
        self.pending += received


def _connection_cap(wanted: int) -> int:
    """`wanted`, or fewer where the open files limit would run out first (accept() then fails)."""
    try:
        import resource
    except ImportError:  # Windows
        return wanted
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft - _RESERVED_FILES >= wanted:
        return wanted
    cap = max(16, soft - _RESERVED_FILES)
    logger.warning("at most %d connections at once: the open files limit is %d (ulimit -n)", cap, soft)
    return cap


def _error(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps({"error": message}).encode())
