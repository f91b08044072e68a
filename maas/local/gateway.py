"""A local stand-in for API Gateway: HTTP in, Lambda proxy events to a handler, HTTP out.

Each request becomes the payload 2.0 event AWS would send and is passed to the very
handler that runs in Lambda, so local and cloud share one code path. Invocations
run one at a time, as in one Lambda container: the handler keeps per-invocation
state (Powertools' current event) that must not interleave.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from maas.errors import ConfigError
from maas.local.context import LocalLambdaContext
from maas.local.events import HttpResponse, http_api_event, http_response

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import ModuleType

    from maas.local.sigv4 import SigV4Verifier

logger = logging.getLogger(__name__)


# Lambda refuses synchronous payloads over 6 MB; the local gateway does the same, visibly.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


def load_handler(path: Path, attribute: str = "handler") -> Callable[[dict[str, Any], Any], Any]:
    """The handler function in the Lambda source file at `path`, loaded as Lambda would load it."""
    handler: Callable[[dict[str, Any], Any], Any] = getattr(load_handler_module(path), attribute)
    return handler


def load_handler_module(path: Path) -> ModuleType:
    """Execute the Lambda source file at `path` as a fresh module (its cold start)."""
    if not path.is_file():
        raise ConfigError(f"no Lambda handler file at {path}")
    spec = importlib.util.spec_from_file_location(f"maas_local_{path.parent.name!s}_handler", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load a Python module from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LocalGateway(ThreadingHTTPServer):
    """An HTTP server on `host:port` that invokes, for each request, the handler of the longest
    matching path prefix in `routes`, as the deployed API's routes do."""

    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when 32 clients connect at
    # once (found by bench/load.py); API Gateway queues them.
    request_queue_size = 128

    def __init__(
        self,
        host: str,
        port: int,
        routes: dict[str, Callable[[dict[str, Any], Any], Any]],
        *,
        verifier: SigV4Verifier | None = None,
    ) -> None:
        self.verifier = verifier
        self.routes = sorted(routes.items(), key=lambda route: len(route[0]), reverse=True)
        # One lock per function: each behaves as one Lambda container.
        self.locks = {prefix: threading.Lock() for prefix in routes}
        super().__init__((host, port), _RequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-exchange is routine; anything else is worth a trace.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            logger.debug("client %s went away: %s", client_address, error)
        else:
            logger.exception("error serving a request from %s", client_address)

    def add_route(self, prefix: str, handler: Callable[[dict[str, Any], Any], Any]) -> None:
        """Route `prefix` to `handler` from now on (routes of a deployed API arrive one by one)."""
        routes = dict(self.routes)
        routes[prefix] = handler
        self.locks.setdefault(prefix, threading.Lock())
        self.routes = sorted(routes.items(), key=lambda route: len(route[0]), reverse=True)

    def invoke(self, event: dict[str, Any]) -> HttpResponse:
        path = event["rawPath"]
        route = next(
            (r for r in self.routes if path == r[0] or path.startswith(r[0].rstrip("/") + "/")), None
        )
        if route is None:
            return _json_response(
                404, {"error": f"no route for {event['requestContext']['http']['method']} {path}"}
            )
        try:
            result = self.invoke_function(route[0], event)
        except Exception:
            # What API Gateway answers when the function itself fails.
            logger.exception("the Lambda handler raised")
            return _json_response(500, {"error": "Internal Server Error: the function raised (see the log)"})
        return http_response(result)

    def invoke_function(self, prefix: str, event: dict[str, Any]) -> Any:
        """Invoke the function routed at `prefix` directly, one invocation at a time per
        function (the SQS trigger uses this too); its exceptions propagate."""
        handler = dict(self.routes)[prefix]
        with self.locks[prefix]:
            return handler(event, LocalLambdaContext())


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalGateway
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients of Triton expect
    # Headers and body go out in separate writes; with Nagle on, each keep-alive exchange
    # would wait for the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def __getattr__(self, name: str) -> Any:
        # Any other method (HEAD, OPTIONS, TRACE, or made up) has no route, as in API Gateway.
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        length = self.headers.get("Content-Length") or "0"
        self._discard(int(length) if length.isascii() and length.isdigit() else 0)
        self._send(
            _json_response(
                405, {"error": f"method {self.command} is not allowed; use GET, POST, PUT or DELETE"}
            )
        )

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors of the HTTP layer itself (a malformed request line, headers too long) in the
        API's {"error": ...} shape, not http.server's HTML page."""
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may be gone already
            self._send(_json_response(code, {"error": message or explain or f"HTTP error {code}"}))

    def _serve(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(
                _json_response(
                    411, {"error": "chunked request bodies are not supported, send Content-Length"}
                )
            )
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(_json_response(400, {"error": "Content-Length is not a non-negative integer"}))
            return
        if length > MAX_PAYLOAD_BYTES:
            self._discard(length)
            self._send(
                _json_response(
                    413,
                    {
                        "error": f"request body of {length} bytes is over the {MAX_PAYLOAD_BYTES} byte (6 MB) "
                        "Lambda payload limit; send large inputs through S3 batch inference"
                    },
                )
            )
            return
        body = self.rfile.read(length) if length else b""
        if self.server.verifier is not None:
            refusal = self.server.verifier.check(
                self.command,
                f"http://{self.headers.get('Host', '')}{self.path}",
                dict(self.headers.items()),
                body,
            )
            if refusal is not None:
                self._send(_json_response(refusal.status, {"error": refusal.message}))
                return
        event = http_api_event(
            method=self.command,
            target=self.path,
            headers={name: value for name, value in self.headers.items()},
            body=body,
            source_ip=self.client_address[0],
        )
        self._send(self.server.invoke(event))

    def _discard(self, length: int) -> None:
        # Drain a moderately oversized body so the client reads our 413 instead of a reset;
        # past that, just close the connection after answering.
        if length > 8 * MAX_PAYLOAD_BYTES:
            self.close_connection = True
            return
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)


def _json_response(status: int, body: dict[str, str]) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())
