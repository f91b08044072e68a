"""What the registry API and `/metrics` share on Powertools' event handler: one error mapping
and the refusal of control characters in paths. The predict function's OIP routes moved off
Powertools to `maas.http.oip` (the lean request path); `build_predict_app` here builds them
for callers that hold a Powertools `Metrics`.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from maas.errors import InvalidInput, MaasError
from maas.http import oip
from maas.http.proxy import JSON, OCTET_STREAM, json_bytes, raw_body
from maas.metrics.records import RequestMetrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

    from maas.dataplane import DataPlane

logger = logging.getLogger(__name__)

SERVED_MODEL = oip.SERVED_MODEL
SERVED_VERSION = oip.SERVED_VERSION


def build_predict_app(dataplane: DataPlane, metrics: Metrics | None = None) -> oip.OipApp:
    """The OIP app over `dataplane` (`maas.http.oip`), publishing under the namespace and service
    of `metrics` if given; its records are written as each request ends."""
    recorder = None
    if metrics is not None:
        recorder = RequestMetrics(
            namespace=metrics.provider.namespace or "MaaS",
            service=metrics.provider.service or "predict",
            known=lambda name: oip.serves_model(dataplane, name),
        )
    return oip.build_predict_app(dataplane, recorder)


def refuse_control_characters(app: APIGatewayHttpResolver) -> None:
    """Answer 400 to a path holding a control character. The router matches routes with `$`,
    which also matches before a final newline: `/aliases/prod%0A` would reach the route as `prod`."""

    def check(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
        path = app.current_event.path
        if any(ord(char) < 32 or ord(char) == 127 for char in path):
            raise InvalidInput(f"the path {path!r} holds a control character")
        return next_middleware(app)

    app.use(middlewares=[check])


def install_error_handlers(app: APIGatewayHttpResolver, api_name: str) -> None:
    """Turn every error into `{"error": "..."}` with its status: the one place this happens."""

    @app.exception_handler(MaasError)
    def maas_error(error: MaasError) -> Response[str]:
        if error.status >= 500:
            logger.error("%s: %s", type(error).__name__, error.message)
        return error_response(error.status, error.message)

    @app.not_found
    def no_route(_: NotFoundError) -> Response[str]:
        event = app.current_event
        return error_response(
            HTTPStatus.NOT_FOUND, f"no {api_name} route for {event.http_method} {event.path}"
        )

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response[str]:
        # The trace goes to the log, never to the client.
        event = app.current_event
        logger.exception("unexpected error serving %s %s", event.http_method, event.path)
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error ({type(error).__name__})")


def error_response(status: int, message: str) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=json.dumps({"error": message}))


__all__ = [
    "JSON",
    "OCTET_STREAM",
    "SERVED_MODEL",
    "SERVED_VERSION",
    "build_predict_app",
    "error_response",
    "install_error_handlers",
    "json_bytes",
    "raw_body",
    "refuse_control_characters",
]
