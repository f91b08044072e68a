"""A local stand-in for API Gateway: HTTP in, Lambda proxy events to a handler, HTTP out.

Each request becomes the payload 2.0 event AWS would send and is passed to the very
handler that runs in Lambda, so local and cloud share one code path, within Lambda's
6 MB limits on the event and on the response. Invocations of one function run one at a
time, as in one Lambda container: the handler keeps per-invocation state (Powertools'
current event) that must not interleave; a handler with a `concurrency` attribute (a pool
of worker processes, each one container) takes that many at once. The HTTP side
(`maas.local.http_server`) keeps waiting clients off the functions' threads and bounds how
long each may wait.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from maas.errors import ConfigError
from maas.local.context import LocalLambdaContext
from maas.local.events import LAMBDA_PAYLOAD_LIMIT, HttpResponse, http_api_event, http_response, payload_size
from maas.local.http_server import HttpServer, ServerLimits

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor
    from pathlib import Path
    from types import ModuleType

    from maas.local.http1 import Request, RequestHead
    from maas.local.sigv4 import SigV4Verifier

logger = logging.getLogger(__name__)

_ROUTED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


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
    # A new container's first invocation is a cold start: Powertools keeps that flag per process,
    # so a second handler loaded here would otherwise never publish its ColdStart metric.
    from aws_lambda_powertools.metrics.provider import cold_start

    cold_start.is_cold_start = True
    spec.loader.exec_module(module)
    return module


class LocalGateway(HttpServer):
    """An HTTP server on `host:port` that invokes, for each request, the handler of the longest
    matching path prefix in `routes`, as the deployed API's routes do."""

    def __init__(
        self,
        host: str,
        port: int,
        routes: dict[str, Callable[[dict[str, Any], Any], Any]],
        *,
        verifier: SigV4Verifier | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        super().__init__(host, port, limits=limits)
        self.verifier = verifier
        self.routes = sorted(routes.items(), key=lambda route: len(route[0]), reverse=True)
        # One lock and one thread per function: each behaves as one Lambda container.
        self.locks = {prefix: threading.Lock() for prefix in routes}
        self._containers: dict[str, ThreadPoolExecutor] = {}
        self._containers_guard = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_route(self, prefix: str, handler: Callable[[dict[str, Any], Any], Any]) -> None:
        """Route `prefix` to `handler` from now on (routes of a deployed API arrive one by one)."""
        routes = dict(self.routes)
        routes[prefix] = handler
        self.locks.setdefault(prefix, threading.Lock())
        self.routes = sorted(routes.items(), key=lambda route: len(route[0]), reverse=True)

    def route_for(self, path: str) -> str | None:
        """The prefix routed for `path` (percent-decoded, as API Gateway matches it), if any."""
        return next(
            (
                prefix
                for prefix, _ in self.routes
                if path == prefix or path.startswith(prefix.rstrip("/") + "/")
            ),
            None,
        )

    def check_head(self, head: RequestHead) -> HttpResponse | None:
        if head.content_length > LAMBDA_PAYLOAD_LIMIT:
            return _json_response(
                413,
                {
                    "error": f"request body of {head.content_length} bytes is over the {LAMBDA_PAYLOAD_LIMIT} byte "
                    "(6 MB) Lambda payload limit; send large inputs through S3 batch inference"
                },
            )
        return None

    def executor_for(self, head: RequestHead) -> Executor:
        """The thread of the function this request is routed to (the shared pool if none)."""
        prefix = self.route_for(unquote(head.target.partition("?")[0]))
        if prefix is None:
            return super().executor_for(head)
        with self._containers_guard:
            if prefix not in self._containers:
                threads = _concurrency(dict(self.routes)[prefix])
                self._containers[prefix] = ThreadPoolExecutor(
                    threads, thread_name_prefix=f"function {prefix}"
                )
            return self._containers[prefix]

    def respond(self, request: Request) -> HttpResponse:
        """What API Gateway answers `request`: refused (method, signature, event size) or invoked."""
        head = request.head
        if head.method not in _ROUTED_METHODS:
            # HEAD, OPTIONS, TRACE or made up: no route has them, as in API Gateway.
            return _json_response(
                405, {"error": f"method {head.method} is not allowed; use GET, POST, PUT or DELETE"}
            )
        if self.verifier is not None:
            refusal = self.verifier.check(
                head.method, f"http://{head.headers.get('host', '')}{head.target}", head.headers, request.body
            )
            if refusal is not None:
                return _json_response(refusal.status, {"error": refusal.message})
        event = http_api_event(
            method=head.method,
            target=head.target,
            headers=head.headers,
            body=request.body,
            source_ip=request.client,
        )
        if self.verifier is not None:
            event["requestContext"]["authorizer"] = self.verifier.authorizer_context()
        size = payload_size(event)
        if size > LAMBDA_PAYLOAD_LIMIT:
            return _json_response(
                413,
                {
                    "error": f"the invocation event of {size} bytes (the body as API Gateway passes it on: "
                    f"base64 if binary, escaped in JSON) is over the {LAMBDA_PAYLOAD_LIMIT} byte (6 MB) Lambda "
                    "payload limit; send large inputs through S3 batch inference"
                },
            )
        return self.invoke(event)

    def invoke(self, event: dict[str, Any]) -> HttpResponse:
        path = event["rawPath"]
        prefix = self.route_for(path)
        if prefix is None:
            return _json_response(
                404, {"error": f"no route for {event['requestContext']['http']['method']} {path}"}
            )
        try:
            result = self.invoke_function(prefix, event)
        except Exception:
            # What API Gateway answers when the function itself fails.
            logger.exception("the Lambda handler raised")
            return _json_response(500, {"error": "Internal Server Error: the function raised (see the log)"})
        return _lambda_response(result)

    def invoke_function(self, prefix: str, event: dict[str, Any]) -> Any:
        """Invoke the function routed at `prefix` directly, one invocation at a time per
        function (the SQS trigger uses this too); its exceptions propagate."""
        handler = dict(self.routes)[prefix]
        if _concurrency(handler) > 1:  # its own containers keep their invocations apart
            return handler(event, LocalLambdaContext())
        with self.locks[prefix]:
            return handler(event, LocalLambdaContext())

    def server_close(self) -> None:
        super().server_close()
        with self._containers_guard:
            for container in self._containers.values():
                container.shutdown(wait=False, cancel_futures=True)


def _concurrency(handler: Callable[[dict[str, Any], Any], Any]) -> int:
    """How many invocations `handler` takes at once: one, unless it says more."""
    return max(1, int(getattr(handler, "concurrency", 1)))


def _lambda_response(result: Any) -> HttpResponse:
    """What API Gateway answers for what a function returned: Lambda itself refuses a
    response over 6 MB (and one that is not JSON), and API Gateway then answers 5xx."""
    try:
        size = payload_size(result)
    except (TypeError, ValueError) as error:
        logger.error("the Lambda handler returned a value that is not JSON: %s", error)
        return _json_response(502, {"error": f"the function's response is not JSON ({error})"})
    if size > LAMBDA_PAYLOAD_LIMIT:
        logger.error("the Lambda handler returned %d bytes, over the 6 MB limit", size)
        return _json_response(
            502,
            {
                "error": f"the function's response of {size} bytes is over the {LAMBDA_PAYLOAD_LIMIT} byte (6 MB) "
                "Lambda response payload limit, which AWS answers with a 5xx; ask for less, or use S3 batch "
                "inference for large outputs"
            },
        )
    return http_response(result)


def _json_response(status: int, body: dict[str, str]) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())
