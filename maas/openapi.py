"""The OpenAPI 3.1 document of maas's HTTP API: the OIP v2 routes (with Triton's statistics,
model configuration and repository index extensions) and the registry routes.

Schemas come from the same pydantic models that parse the requests, so the document
cannot drift from what the server accepts; `openapi.json` at the repository root is
this document, written by `maas openapi`, and a test keeps it current.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from maas import __version__
from maas.http.registry import AliasRequest, RegisterRequest, RollbackRequest, UploadRequest
from maas.protocol.models import (
    ErrorResponse,
    InferenceRequest,
    InferenceResponse,
    ModelMetadataResponse,
    ModelReadyResponse,
    ServerLiveResponse,
    ServerMetadataResponse,
    ServerReadyResponse,
)
from maas.protocol.triton import (
    ModelConfigResponse,
    ModelStatisticsResponse,
    RepositoryIndexRequest,
    RepositoryIndexResponse,
)

_MODELS: list[type[BaseModel]] = [
    ErrorResponse,
    InferenceRequest,
    InferenceResponse,
    ModelMetadataResponse,
    ModelReadyResponse,
    ServerLiveResponse,
    ServerMetadataResponse,
    ServerReadyResponse,
    RepositoryIndexRequest,
    RepositoryIndexResponse,
    ModelStatisticsResponse,
    ModelConfigResponse,
    UploadRequest,
    RegisterRequest,
    AliasRequest,
    RollbackRequest,
]
_ERRORS = {
    status: {"description": why, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    for status, why in {
        "400": "bad input, naming what is wrong",
        "404": "no such model, version or alias",
        "409": "a conflicting change (registry)",
        "413": "body over the 6 MB Lambda payload limit",
        "503": "the model cannot be served now",
    }.items()
}  # fmt: skip


def _ok(schema: str | None, description: str = "OK", status: str = "200") -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    elif status != "204":
        response["content"] = {"application/json": {"schema": {"type": "object"}}}
    return {status: response, **_ERRORS}


def _body(schema: str, *, required: bool = True) -> dict[str, Any]:
    return {
        "required": required,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _params(*names: str, query: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    path = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in names]
    extra = {
        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
        "token": {"type": "string"},
        "expected_revision": {"type": "integer", "minimum": 0},
    }
    return path + [{"name": name, "in": "query", "required": False, "schema": extra[name]} for name in query]


def _oip_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/v2/health/live": {"get": {"operationId": "serverLive", "responses": _ok("ServerLiveResponse")}},
        "/v2/health/ready": {"get": {"operationId": "serverReady", "responses": _ok("ServerReadyResponse")}},
        "/v2": {"get": {"operationId": "serverMetadata", "responses": _ok("ServerMetadataResponse")}},
        # Triton's model repository extension, index only; `maas dev` answers it, the deployed API does not route it.
        "/v2/repository/index": {
            "post": {
                "operationId": "repositoryIndex",
                "requestBody": _body("RepositoryIndexRequest", required=False),
                "responses": _ok("RepositoryIndexResponse"),
            }
        },
    }
    for prefix, names, suffix in (
        ("/v2/models/{name}", ("name",), ""),
        ("/v2/models/{name}/versions/{version}", ("name", "version"), "Version"),
    ):
        paths[prefix] = {
            "get": {
                "operationId": f"modelMetadata{suffix}",
                "parameters": _params(*names),
                "responses": _ok("ModelMetadataResponse"),
            }
        }
        paths[f"{prefix}/ready"] = {
            "get": {
                "operationId": f"modelReady{suffix}",
                "parameters": _params(*names),
                "responses": _ok("ModelReadyResponse"),
            }
        }
        paths[f"{prefix}/stats"] = {
            "get": {
                "operationId": f"modelStatistics{suffix}",
                "parameters": _params(*names),
                "responses": _ok("ModelStatisticsResponse"),
            }
        }
        paths[f"{prefix}/config"] = {
            "get": {
                "operationId": f"modelConfig{suffix}",
                "parameters": _params(*names),
                "responses": _ok("ModelConfigResponse"),
            }
        }
        paths[f"{prefix}/infer"] = {
            "post": {
                "operationId": f"modelInfer{suffix}",
                "parameters": _params(*names),
                "requestBody": _body("InferenceRequest"),
                "responses": _ok("InferenceResponse"),
            }
        }
    return paths


def _registry_paths() -> dict[str, Any]:
    model = "/registry/models/{name}"
    alias = f"{model}/aliases/{{alias}}"
    return {
        "/registry/models": {"get": {"operationId": "listModels", "parameters": _params(query=("limit", "token")), "responses": _ok(None)}},
        model: {
            "get": {"operationId": "showModel", "parameters": _params("name"), "responses": _ok(None)},
            "delete": {"operationId": "deleteModel", "parameters": _params("name"), "responses": _ok(None)},
        },
        f"{model}/uploads": {
            "post": {"operationId": "createUpload", "parameters": _params("name"), "requestBody": _body("UploadRequest"), "responses": _ok(None, status="201")}
        },
        f"{model}/versions": {
            "get": {"operationId": "listVersions", "parameters": _params("name", query=("limit", "token")), "responses": _ok(None)},
            "post": {"operationId": "registerVersion", "parameters": _params("name"), "requestBody": _body("RegisterRequest"), "responses": _ok(None, status="201")},
        },
        f"{model}/versions/{{version}}": {"get": {"operationId": "showVersion", "parameters": _params("name", "version"), "responses": _ok(None)}},
        f"{model}/versions/{{version}}/retire": {"post": {"operationId": "retireVersion", "parameters": _params("name", "version"), "responses": _ok(None)}},
        alias: {
            "get": {"operationId": "showAlias", "parameters": _params("name", "alias"), "responses": _ok(None)},
            "put": {"operationId": "setAlias", "parameters": _params("name", "alias"), "requestBody": _body("AliasRequest"), "responses": _ok(None)},
            "delete": {"operationId": "deleteAlias", "parameters": _params("name", "alias", query=("expected_revision",)), "responses": _ok(None)},
        },
        f"{alias}/rollback": {"post": {"operationId": "rollbackAlias", "parameters": _params("name", "alias"), "requestBody": _body("RollbackRequest"), "responses": _ok(None)}},
        f"{alias}/history": {"get": {"operationId": "aliasHistory", "parameters": _params("name", "alias", query=("limit", "token")), "responses": _ok(None)}},
        f"{alias}/target": {"get": {"operationId": "aliasTarget", "parameters": _params("name", "alias"), "responses": _ok(None)}},
    }  # fmt: skip


def build_document() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(model, "validation") for model in _MODELS], ref_template="#/components/schemas/{model}"
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "maas",
            "version": __version__,
            "description": "Open Inference Protocol v2 (REST) and the maas model registry. Every route needs "
            'IAM (SigV4) or JWT auth when deployed; errors are {"error": "..."}.',
        },
        "paths": {**_oip_paths(), **_registry_paths()},
        "components": {"schemas": definitions["$defs"]},
    }
