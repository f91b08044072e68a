"""The OIP v2 REST routes of the predict function over API Gateway HTTP API events.

Only translation happens here: the body becomes an inference request (JSON, or JSON plus
binary tensor data), the data plane answers, and its answer or error becomes a proxy
response. This is the one place a `MaasError` of the predict function becomes
`{"error": "..."}`. Answers, errors, routes and metrics are those of the Powertools resolver
this replaced (tests/data/golden holds them); it is hand-rolled because the resolver's
import and per-request work cost more than the rest of a small model's answer.
"""

from __future__ import annotations

import logging
import re
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from maas.errors import InvalidInput, MaasError
from maas.http.proxy import JSON, OCTET_STREAM, HttpRequest, error_response, json_bytes, proxy_response
from maas.http.router import Router
from maas.protocol.binary import HEADER_LENGTH, split_body
from maas.protocol.wire import decode_index_request, decode_request, encode

if TYPE_CHECKING:
    from collections.abc import Callable

    import msgspec

    from maas.dataplane import DataPlane, InferenceResult
    from maas.metrics.records import RequestMetrics

logger = logging.getLogger(__name__)

# Which model and version answered an inference: response headers, as SageMaker's
# InvokedProductionVariant, so that a canary's split is visible per response.
SERVED_MODEL = "x-maas-model"
SERVED_VERSION = "x-maas-model-version"

Figures = list[tuple[str, str, float]]
# C0 controls and DEL; one regex search costs a tenth of a character-by-character scan.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


class OipApp:
    """Every OIP v2 route served from `dataplane`, and Triton's extensions clients call first:
    model statistics, model configuration, the repository index. `resolve` answers one event."""

    def __init__(self, dataplane: DataPlane, metrics: RequestMetrics | None = None) -> None:
        self.dataplane = dataplane
        self.metrics = metrics
        self.routes: Router[Callable[[HttpRequest, dict[str, str], Figures], dict[str, Any]]] = Router()
        self._add_routes()

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The proxy response to one payload-2.0 event; never raises."""
        started = time.perf_counter()
        figures: Figures = []
        args: dict[str, str] = {}
        status = HTTPStatus.INTERNAL_SERVER_ERROR.value
        request = None
        if self.metrics is not None:
            self.metrics.cold_start(getattr(context, "function_name", "unknown"))
        try:
            request = HttpRequest.from_event(event)
            response = self._dispatch(request, args, figures)
        except MaasError as error:
            if error.status >= 500:
                logger.error("%s: %s", type(error).__name__, error.message)
            response = error_response(error.status, error.message)
        except Exception as error:
            # The trace goes to the log, never to the client.
            where = f"{request.method} {request.path}" if request is not None else "an unreadable event"
            logger.exception("unexpected error serving %s", where)
            response = error_response(
                HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error ({type(error).__name__})"
            )
        status = response["statusCode"]
        if self.metrics is not None:
            self.metrics.finished(figures, args.get("name"), status, started)
        return response

    def _dispatch(self, request: HttpRequest, args: dict[str, str], figures: Figures) -> dict[str, Any]:
        # A path holding a control character is refused: the routes' `$` also matches before a
        # final newline, so `/ready%0A` would otherwise reach the route as `/ready`.
        matched = self.routes.match(request.method, request.path)
        if matched is not None:
            args.update(matched[1])
        if _CONTROL_CHARACTER.search(request.path) is not None:
            raise InvalidInput(f"the path {request.path!r} holds a control character")
        if matched is None:
            return error_response(HTTPStatus.NOT_FOUND, f"no OIP route for {request.method} {request.path}")
        return matched[0](request, args, figures)

    def _add_routes(self) -> None:
        plane, get, route = self.dataplane, self._get, self.routes.add

        get("/v2/health/live", lambda a: plane.live())
        get("/v2", lambda a: plane.server_metadata())
        get("/v2/models/<name>", lambda a: plane.model_metadata(a["name"]))
        get("/v2/models/<name>/versions/<version>", lambda a: plane.model_metadata(a["name"], a["version"]))
        get("/v2/models/<name>/ready", lambda a: plane.model_ready(a["name"]))
        get(
            "/v2/models/<name>/versions/<version>/ready", lambda a: plane.model_ready(a["name"], a["version"])
        )
        get("/v2/models/<name>/stats", lambda a: plane.model_statistics(a["name"]))
        get(
            "/v2/models/<name>/versions/<version>/stats",
            lambda a: plane.model_statistics(a["name"], a["version"]),
        )
        get("/v2/models/<name>/config", lambda a: plane.model_config(a["name"]))
        get(
            "/v2/models/<name>/versions/<version>/config",
            lambda a: plane.model_config(a["name"], a["version"]),
        )

        @route("GET", "/v2/health/ready")
        def server_ready(request: HttpRequest, args: dict[str, str], figures: Figures) -> dict[str, Any]:
            ready = plane.ready()
            return json_answer(ready, HTTPStatus.OK if ready.ready else HTTPStatus.SERVICE_UNAVAILABLE)

        @route("POST", "/v2/repository/index")
        def repository_index(request: HttpRequest, args: dict[str, str], figures: Figures) -> dict[str, Any]:
            wanted = parse_index_request(request.body)
            return json_answer(plane.repository_index(ready_only=wanted.ready))

        @route("POST", "/v2/models/<name>/infer")
        @route("POST", "/v2/models/<name>/versions/<version>/infer")
        def infer(request: HttpRequest, args: dict[str, str], figures: Figures) -> dict[str, Any]:
            name = args["name"]
            # Resolved before the body is read: an unknown model is a 404 whatever the body holds,
            # as in Triton. The same resolution then serves the request (one canary draw).
            ref = plane.source.resolve(name, args.get("version"))
            header, tail = split_body(request.body, request.headers.get(HEADER_LENGTH.lower()))
            result = plane.infer_resolved(ref, parse_request(header), tail)
            if self.metrics is not None:
                version = result.response.model_version or ref.version
                self.metrics.served(figures, name, version, result.inference_ms)
            return render_result(result)

    def _get(self, pattern: str, answer: Callable[[dict[str, str]], msgspec.Struct]) -> None:
        def answer_json(request: HttpRequest, args: dict[str, str], figures: Figures) -> dict[str, Any]:
            return json_answer(answer(args))

        self.routes.add("GET", pattern)(answer_json)


def build_predict_app(dataplane: DataPlane, metrics: RequestMetrics | None = None) -> OipApp:
    """The OIP app of the predict function over `dataplane`, publishing `metrics` if given."""
    return OipApp(dataplane, metrics)


def serves_model(dataplane: DataPlane, name: str) -> bool:
    """Whether `name` is a model with a version to serve (a 4xx for it is counted under it)."""
    try:
        return bool(dataplane.source.versions(name))
    except MaasError:  # ModelNotFound, or InvalidInput for a name no model can have
        return False


def json_answer(message: msgspec.Struct, status: int = HTTPStatus.OK) -> dict[str, Any]:
    return proxy_response(status, encode(message).decode())


def parse_request(body: bytes) -> Any:
    """The inference request in a JSON body; raises InvalidInput saying what is malformed."""
    if not body.strip():
        raise InvalidInput("the request body is empty, expected an OIP inference request in JSON")
    return decode_request(json_bytes(body))


def parse_index_request(body: bytes) -> Any:
    """The repository index request in a JSON body, which may be empty (Triton's client sends
    none); raises InvalidInput saying what is malformed."""
    if not body.strip():
        return decode_index_request(b"{}")
    return decode_index_request(json_bytes(body))


def render_result(result: InferenceResult) -> dict[str, Any]:
    """JSON, or JSON followed by binary tensor data when any output travels as binary. Headers
    say which model and version answered (under a canary, which of the weighted versions), so
    that proxies, logs and clients see it without parsing the body."""
    header = encode(result.response)
    served = {SERVED_MODEL: result.response.model_name}
    if result.response.model_version:
        served[SERVED_VERSION] = result.response.model_version
    if not result.binary:
        return proxy_response(HTTPStatus.OK, header.decode(), JSON, served)
    return proxy_response(
        HTTPStatus.OK,
        header + b"".join(result.binary),
        OCTET_STREAM,
        {HEADER_LENGTH: str(len(header)), **served},
    )


__all__ = ["SERVED_MODEL", "SERVED_VERSION", "OipApp", "build_predict_app", "serves_model"]
