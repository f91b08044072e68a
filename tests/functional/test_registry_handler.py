"""The registry Lambda handler: presigned upload, registration, aliases, errors in the OIP shape."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from maas.local.context import LocalLambdaContext
from maas.local.events import HttpResponse, http_api_event, http_response
from maas.local.gateway import load_handler_module
from maas.registry import Registry
from tests.conftest import REPO_ROOT

REGISTRY_HANDLER = REPO_ROOT / "functions" / "registry" / "handler.py"


@pytest.fixture
def handler_module(dynamo_registry: Registry, aws_endpoint: str) -> ModuleType:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", aws_endpoint)
        env.setenv("MAAS_REGISTRY_TABLE", dynamo_registry.store.table_name)  # type: ignore[attr-defined]
        env.setenv("MAAS_ARTIFACT_BUCKET", dynamo_registry.artifacts.bucket)
        return load_handler_module(REGISTRY_HANDLER)


def call(module: ModuleType, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    event = http_api_event(method=method, target=path, headers={"content-type": "application/json"}, body=raw)
    response: HttpResponse = http_response(module.handler(event, LocalLambdaContext()))
    assert response.headers["content-type"] == "application/json"
    return response.status, json.loads(response.body)


def test_an_artifact_uploaded_by_presigned_url_is_registered_and_promoted(
    handler_module: ModuleType, artifacts: dict[str, Path]
) -> None:
    status, upload = call(handler_module, "POST", "/registry/models/sum/uploads", {"filename": "model.onnx"})
    assert status == 201
    put = urllib.request.Request(
        upload["upload_url"],
        data=artifacts["sum"].read_bytes(),
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(put, timeout=30) as response:
        assert response.status == 200

    status, version = call(
        handler_module,
        "POST",
        "/registry/models/sum/versions",
        {"upload_key": upload["upload_key"], "metrics": {"accuracy": 1.0}, "labels": {"team": "core"}},
    )
    assert status == 201, version
    assert (version["version"], version["framework"], version["metrics"]) == (1, "onnx", {"accuracy": 1.0})
    artifacts_bucket = handler_module.registry.artifacts
    leftover = artifacts_bucket.client.list_objects_v2(Bucket=artifacts_bucket.bucket, Prefix="uploads/")
    assert leftover["KeyCount"] == 0  # the upload is gone; the artifact lives at its sha256

    status, alias = call(handler_module, "PUT", "/registry/models/sum/aliases/prod", {"version": 1})
    assert (status, alias["weights"], alias["revision"]) == (200, {"1": 100}, 1)
    status, shown = call(handler_module, "GET", "/registry/models/sum")
    assert status == 200
    assert [v["version"] for v in shown["versions"]] == [1]
    assert [a["alias"] for a in shown["aliases"]] == ["prod"]
    status, history = call(handler_module, "GET", "/registry/models/sum/aliases/prod/history")
    assert [h["action"] for h in history["history"]] == ["promote"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/registry/models/nope", None, 404, "model 'nope' not found"),
        (
            "POST",
            "/registry/models/sum/versions",
            {"upload_key": "uploads/x/model.onnx"},
            400,
            "no uploaded file",
        ),
        (
            "POST",
            "/registry/models/sum/versions",
            {"upload_key": "../../etc/passwd"},
            400,
            "not an upload key",
        ),
        ("POST", "/registry/models/sum/versions", {}, 400, "upload_key: Field required"),
        ("POST", "/registry/models/sum/uploads", {"filename": "a/b.onnx"}, 400, "must be a plain file name"),
        ("PUT", "/registry/models/sum/aliases/prod", {}, 400, "give either 'version' (promote) or 'weights'"),
        ("GET", "/registry/models/sum/versions/one", None, 400, "'one' is not a version number"),
        ("GET", "/registry/models?limit=x", None, 400, "limit must be an integer"),
        ("GET", "/registry/nothing", None, 404, "no registry route for GET /registry/nothing"),
    ],
)
def test_bad_requests_get_an_error_naming_the_problem(  # noqa: PLR0917 - one parameter per table column
    handler_module: ModuleType, method: str, path: str, body: Any, status: int, message: str
) -> None:
    answer_status, answer = call(handler_module, method, path, body)
    assert answer_status == status, answer
    assert message in answer["error"]


def test_a_stale_alias_write_is_a_409(
    handler_module: ModuleType, dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.promote("sum", "prod", 1)
    dynamo_registry.promote("sum", "prod", 2)
    status, answer = call(
        handler_module, "PUT", "/registry/models/sum/aliases/prod", {"version": 1, "expected_revision": 1}
    )
    assert status == 409
    assert answer == {"error": "alias 'prod' of model 'sum' is at revision 2, not 1; read it again"}
