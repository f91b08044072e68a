"""The OIP v2 REST routes over API Gateway HTTP API events, on Powertools' event handler.

Only translation happens here: the body becomes an `InferenceRequest` (JSON, or JSON
plus binary tensor data), the data plane answers, and its answer or error becomes
an HTTP response. This is the one place a `MaasError` becomes `{"error": "..."}`.
"""

from __future__ import annotations

import base64
import json
import logging
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from pydantic import BaseModel, ValidationError

from maas.errors import InvalidInput, MaasError
from maas.metrics.emf import install_request_metrics, served
from maas.protocol import HEADER_LENGTH, InferenceRequest, RepositoryIndexRequest, split_body

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

    from maas.dataplane import DataPlane, InferenceResult

logger = logging.getLogger(__name__)

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
# Which model and version answered an inference: response headers, as SageMaker's
# InvokedProductionVariant, so that a canary's split is visible per response.
SERVED_MODEL = "x-maas-model"
SERVED_VERSION = "x-maas-model-version"


def build_predict_app(dataplane: DataPlane, metrics: Metrics | None = None) -> APIGatewayHttpResolver:
    """An event resolver serving every OIP v2 route from `dataplane`, and Triton's extensions
    clients call first: model statistics, model configuration, the repository index."""
    app = APIGatewayHttpResolver()

    if metrics is not None:
        install_request_metrics(app, metrics, known=lambda name: serves_model(dataplane, name))
    refuse_control_characters(app)

    @app.get("/v2/health/live")
    def server_live() -> Response[str]:
        return json_response(dataplane.live())

    @app.get("/v2/health/ready")
    def server_ready() -> Response[str]:
        ready = dataplane.ready()
        return json_response(ready, HTTPStatus.OK if ready.ready else HTTPStatus.SERVICE_UNAVAILABLE)

    @app.get("/v2")
    def server_metadata() -> Response[str]:
        return json_response(dataplane.server_metadata())

    @app.get("/v2/models/<name>")
    def model_metadata(name: str) -> Response[str]:
        return json_response(dataplane.model_metadata(name))

    @app.get("/v2/models/<name>/versions/<version>")
    def model_version_metadata(name: str, version: str) -> Response[str]:
        return json_response(dataplane.model_metadata(name, version))

    @app.get("/v2/models/<name>/ready")
    def model_ready(name: str) -> Response[str]:
        return json_response(dataplane.model_ready(name))

    @app.get("/v2/models/<name>/versions/<version>/ready")
    def model_version_ready(name: str, version: str) -> Response[str]:
        return json_response(dataplane.model_ready(name, version))

    @app.get("/v2/models/<name>/stats")
    def model_statistics(name: str) -> Response[str]:
        return json_response(dataplane.model_statistics(name))

    @app.get("/v2/models/<name>/versions/<version>/stats")
    def model_version_statistics(name: str, version: str) -> Response[str]:
        return json_response(dataplane.model_statistics(name, version))

    @app.get("/v2/models/<name>/config")
    def model_config(name: str) -> Response[str]:
        return json_response(dataplane.model_config(name))

    @app.get("/v2/models/<name>/versions/<version>/config")
    def model_version_config(name: str, version: str) -> Response[str]:
        return json_response(dataplane.model_config(name, version))

    @app.post("/v2/repository/index")
    def repository_index() -> Response[str]:
        event = app.current_event
        wanted = parse_index_request(raw_body(event.body, bool(event.is_base64_encoded)))
        return json_response(dataplane.repository_index(ready_only=wanted.ready))

    @app.post("/v2/models/<name>/infer")
    def infer(name: str) -> Response[bytes | str]:
        return _infer(name, None)

    @app.post("/v2/models/<name>/versions/<version>/infer")
    def infer_version(name: str, version: str) -> Response[bytes | str]:
        return _infer(name, version)

    def _infer(name: str, version: str | None) -> Response[bytes | str]:
        event = app.current_event
        headers = {key.lower(): value for key, value in (event.headers or {}).items()}
        # Resolved before the body is read: an unknown model is a 404 whatever the body holds,
        # as in Triton. The same resolution then serves the request (one canary draw).
        ref = dataplane.source.resolve(name, version)
        header, tail = split_body(
            raw_body(event.body, bool(event.is_base64_encoded)), headers.get(HEADER_LENGTH.lower())
        )
        result = dataplane.infer_resolved(ref, parse_request(header), tail)
        if metrics is not None:
            served(metrics, name, result.response.model_version or ref.version, result.inference_ms)
        return render_result(result)

    install_error_handlers(app, "OIP")
    return app


def serves_model(dataplane: DataPlane, name: str) -> bool:
    """Whether `name` is a model with a version to serve (a 4xx for it is counted under it)."""
    try:
        return bool(dataplane.source.versions(name))
    except MaasError:  # ModelNotFound, or InvalidInput for a name no model can have
        return False


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


def json_response(message: BaseModel, status: int = HTTPStatus.OK) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=message.model_dump_json(exclude_none=True))


def raw_body(body: str | None, is_base64: bool) -> bytes:
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


def parse_request(body: bytes) -> InferenceRequest:
    """The InferenceRequest in a JSON body; raises InvalidInput saying what is malformed."""
    if not body.strip():
        raise InvalidInput("the request body is empty, expected an OIP inference request in JSON")
    try:
        return InferenceRequest.model_validate_json(json_bytes(body))
    except ValidationError as error:
        raise InvalidInput(f"invalid inference request: {_describe(error)}") from None


def parse_index_request(body: bytes) -> RepositoryIndexRequest:
    """The repository index request in a JSON body, which may be empty (Triton's client sends
    none); raises InvalidInput saying what is malformed."""
    if not body.strip():
        return RepositoryIndexRequest()
    try:
        return RepositoryIndexRequest.model_validate_json(json_bytes(body))
    except ValidationError as error:
        raise InvalidInput(f"invalid repository index request: {_describe(error)}") from None


def render_result(result: InferenceResult) -> Response[bytes | str]:
    """JSON, or JSON followed by binary tensor data when any output travels as binary. Headers
    say which model and version answered (under a canary, which of the weighted versions), so
    that proxies, logs and clients see it without parsing the body."""
    header = result.response.model_dump_json(exclude_none=True)
    served = {SERVED_MODEL: result.response.model_name}
    if result.response.model_version:
        served[SERVED_VERSION] = result.response.model_version
    if not result.binary:
        return Response(status_code=HTTPStatus.OK, content_type=JSON, body=header, headers=served)
    header_bytes = header.encode()
    return Response(
        status_code=HTTPStatus.OK,
        content_type=OCTET_STREAM,
        body=header_bytes + b"".join(result.binary),
        headers={HEADER_LENGTH: str(len(header_bytes)), **served},
    )


def error_response(status: int, message: str) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=json.dumps({"error": message}))


def _describe(error: ValidationError, limit: int = 3) -> str:
    problems = []
    for detail in error.errors(include_url=False)[:limit]:
        where = ".".join(str(part) for part in detail["loc"])
        problems.append(f"{where}: {detail['msg']}" if where else detail["msg"])
    more = error.error_count() - limit
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")
