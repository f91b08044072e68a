"""The registry HTTP API (`/registry/...`) over API Gateway events: JSON in, JSON out,
errors in the same `{"error": "..."}` shape as the OIP API. An adapter over the control
plane: every change is the control plane's, made as the request's caller."""

from __future__ import annotations

import tempfile
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import BaseModel, BeforeValidator, Field, FiniteFloat, StrictInt, ValidationError

from maas.errors import InvalidInput
from maas.http.resolver import JSON, install_error_handlers, json_bytes, raw_body, refuse_control_characters
from maas.identity import caller_of
from maas.metrics.emf import install_request_metrics
from maas.names import check_name, is_version_number
from maas.registry.models import Target
from maas.sagemaker.triton import TritonOptions

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

    from maas.control import ControlPlane
    from maas.registry.service import Registry

Body = TypeVar("Body", bound=BaseModel)


def _version_key(value: object) -> object:
    # JSON object keys are strings, which pydantic would read as integers leniently ("1.0", " 1").
    if isinstance(value, str):
        if not is_version_number(value):
            raise ValueError(f"'{value}' is not a version number")
        return int(value)
    return value


# A version number as a JSON object key: ASCII digits only.
VersionKey = Annotated[StrictInt, BeforeValidator(_version_key)]


class UploadRequest(BaseModel):
    filename: str = Field(min_length=1)


class RegisterRequest(BaseModel):
    upload_key: str
    target: Target = Target.LAMBDA
    quantization: str | None = None
    metrics: dict[str, FiniteFloat] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    source_commit: str | None = None
    # How Triton runs a version registered for SageMaker (packed at registration).
    triton: TritonOptions | None = None


class AliasRequest(BaseModel):
    # Strict: `true` and `1.0` are not version numbers.
    version: StrictInt | None = None
    weights: dict[VersionKey, StrictInt] | None = None
    expected_revision: StrictInt | None = None


class RollbackRequest(BaseModel):
    expected_revision: StrictInt | None = None


def build_registry_app(
    control: ControlPlane | Registry, metrics: Metrics | None = None, *, max_upload_bytes: int | None = None
) -> APIGatewayHttpResolver:
    """The registry's routes over `control` (a bare Registry gets a control plane of its own);
    an upload over `max_upload_bytes` is refused before it is read."""
    from maas.control import ControlPlane

    if not isinstance(control, ControlPlane):
        control = ControlPlane(control)
    registry = control.registry
    app = APIGatewayHttpResolver()
    if metrics is not None:
        # A request is counted under its model only if the model exists once it is answered
        # (an upload succeeds for any name): a caller's made-up names must not mint a series each.
        install_request_metrics(app, metrics, known=registry.exists)
    refuse_control_characters(app)
    _add_model_routes(app, control, max_upload_bytes)
    _add_alias_routes(app, control)
    install_error_handlers(app, "registry")
    return app


def _body(app: APIGatewayHttpResolver, model: type[Body]) -> Body:
    event = app.current_event
    data = raw_body(event.body, bool(event.is_base64_encoded)) or b"{}"
    try:
        return model.model_validate_json(json_bytes(data))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()[:3]
        )
        raise InvalidInput(f"invalid request: {problems}") from None


def _as_caller(app: APIGatewayHttpResolver, control: ControlPlane) -> ControlPlane:
    """The control plane acting as this request's caller, who the records of its change name."""
    return control.acting_as(caller_of(app.current_event.raw_event))


def _page_arguments(app: APIGatewayHttpResolver) -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    try:
        limit = int(query.get("limit", 50))
    except ValueError:
        raise InvalidInput("limit must be an integer") from None
    return {"limit": limit, "token": query.get("token")}


def _expected_revision(app: APIGatewayHttpResolver) -> int | None:
    value = (app.current_event.query_string_parameters or {}).get("expected_revision")
    if value is None:
        return None
    if not is_version_number(value):
        raise InvalidInput("expected_revision must be an integer")
    return int(value)


def _add_model_routes(
    app: APIGatewayHttpResolver, control: ControlPlane, max_upload_bytes: int | None
) -> None:
    registry = control.registry

    @app.get("/registry/models")
    def list_models() -> Response[str]:
        page = registry.models(**_page_arguments(app))
        models = [
            {"name": h.name, "latest_version": h.latest_version, "created_at": h.created_at}
            for h in page.items
        ]
        return _json({"models": models, "next_token": page.next_token})

    @app.get("/registry/models/<name>")
    def show_model(name: str) -> Response[str]:
        versions = registry.versions(name)
        return _json(
            {
                "name": name,
                "versions": [v.model_dump(mode="json") for v in versions.items],
                "next_token": versions.next_token,
                "unreadable": versions.unreadable,
                "aliases": [a.model_dump(mode="json") for a in registry.aliases(name)],
            }
        )

    @app.delete("/registry/models/<name>")
    def delete_model(name: str) -> Response[str]:
        _as_caller(app, control).delete(name)
        return _json({"deleted": name})

    @app.get("/registry/models/<name>/versions")
    def list_versions(name: str) -> Response[str]:
        page = registry.versions(name, **_page_arguments(app))
        return _json(
            {
                "versions": [v.model_dump(mode="json") for v in page.items],
                "next_token": page.next_token,
                "unreadable": page.unreadable,
            }
        )

    @app.post("/registry/models/<name>/uploads")
    def create_upload(name: str) -> Response[str]:
        request = _body(app, UploadRequest)
        url, key = registry.artifacts.presigned_upload(check_name("model name", name), request.filename)
        return _json(
            {"upload_url": url, "upload_key": key, "max_bytes": max_upload_bytes}, HTTPStatus.CREATED
        )

    @app.post("/registry/models/<name>/versions")
    def register(name: str) -> Response[str]:
        request = _body(app, RegisterRequest)
        with tempfile.TemporaryDirectory() as scratch:
            path = registry.artifacts.download_upload(
                check_name("model name", name), request.upload_key, Path(scratch), max_bytes=max_upload_bytes
            )
            version = _as_caller(app, control).register(
                name,
                path,
                target=request.target,
                triton=request.triton,
                quantization=request.quantization,
                metrics=request.metrics,
                labels=request.labels,
                source_commit=request.source_commit,
            )
        registry.artifacts.delete_upload(request.upload_key)
        return _json(version.model_dump(mode="json"), HTTPStatus.CREATED)

    @app.get("/registry/models/<name>/versions/<version>")
    def show_version(name: str, version: str) -> Response[str]:
        return _json(registry.get(name, _number(version)).model_dump(mode="json"))

    @app.post("/registry/models/<name>/versions/<version>/retire")
    def retire(name: str, version: str) -> Response[str]:
        return _json(_as_caller(app, control).retire(name, _number(version)).model_dump(mode="json"))


def _add_alias_routes(app: APIGatewayHttpResolver, control: ControlPlane) -> None:
    registry = control.registry

    @app.get("/registry/models/<name>/aliases/<alias>")
    def show_alias(name: str, alias: str) -> Response[str]:
        return _json(registry.alias(name, alias).model_dump(mode="json"))

    @app.get("/registry/models/<name>/aliases/<alias>/target")
    def show_target(name: str, alias: str) -> Response[str]:
        """Where the alias's serving target stands (a SageMaker endpoint); `target: null` when
        no version of the alias runs on SageMaker."""
        state = control.target(name, alias)
        return _json({"target": state.model_dump(mode="json", exclude={"scaling"}) if state else None})

    @app.put("/registry/models/<name>/aliases/<alias>")
    def set_alias(name: str, alias: str) -> Response[str]:
        request = _body(app, AliasRequest)
        acting = _as_caller(app, control)
        if (request.version is None) == (request.weights is None):
            raise InvalidInput("give either 'version' (promote) or 'weights' (canary)")
        if request.version is not None:
            result = acting.promote(name, alias, request.version, expected_revision=request.expected_revision)
        else:
            result = acting.canary(
                name, alias, request.weights or {}, expected_revision=request.expected_revision
            )
        return _json(result.model_dump(mode="json"))

    @app.delete("/registry/models/<name>/aliases/<alias>")
    def delete_alias(name: str, alias: str) -> Response[str]:
        change = _as_caller(app, control).delete_alias(name, alias, expected_revision=_expected_revision(app))
        return _json(change.model_dump(mode="json"))

    @app.post("/registry/models/<name>/aliases/<alias>/rollback")
    def rollback(name: str, alias: str) -> Response[str]:
        request = _body(app, RollbackRequest)
        return _json(
            _as_caller(app, control)
            .rollback(name, alias, expected_revision=request.expected_revision)
            .model_dump(mode="json")
        )

    @app.get("/registry/models/<name>/aliases/<alias>/history")
    def history(name: str, alias: str) -> Response[str]:
        page = registry.history(name, alias, **_page_arguments(app))
        return _json(
            {"history": [h.model_dump(mode="json") for h in page.items], "next_token": page.next_token}
        )


def _number(version: str) -> int:
    if not is_version_number(version):
        raise InvalidInput(f"version '{version}' is not a version number")
    return int(version)


def _json(value: dict[str, Any], status: int = HTTPStatus.OK) -> Response[str]:
    import json

    return Response(status_code=status, content_type=JSON, body=json.dumps(value))
