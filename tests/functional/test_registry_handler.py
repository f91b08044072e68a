"""The registry Lambda handler: presigned upload, registration, aliases, errors in the OIP shape."""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from maas.local.context import LocalLambdaContext
from maas.local.events import HttpResponse, http_api_event, http_response
from maas.local.gateway import load_handler_module
from maas.registry import Registry
from tests import fakes
from tests.conftest import REPO_ROOT
from tests.functional.conftest import load_registry_handler

REGISTRY_HANDLER = REPO_ROOT / "functions" / "registry" / "handler.py"


@pytest.fixture
def handler_module(dynamo_registry: Registry, aws_endpoint: str) -> ModuleType:
    return load_registry_handler(dynamo_registry, aws_endpoint)


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
            {"upload_key": "uploads/sum/0123456789abcdef0123456789abcdef/model.onnx"},
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
        (
            "PUT",
            "/registry/models/sum/aliases/prod",
            {"version": True},
            400,
            "version: Input should be a valid integer",
        ),
        (
            "PUT",
            "/registry/models/sum/aliases/prod",
            {"version": 1.0},
            400,
            "version: Input should be a valid integer",
        ),
        (
            "PUT",
            "/registry/models/sum/aliases/prod",
            {"weights": {"1.0": 100}},
            400,
            "'1.0' is not a version number",
        ),
        (
            "PUT",
            "/registry/models/sum/aliases/prod",
            {"weights": {"1": True}},
            400,
            "weights.1: Input should be a valid integer",
        ),
        (
            "PUT",
            "/registry/models/sum/aliases/prod",
            {"version": 1, "expected_revision": True},
            400,
            "expected_revision",
        ),
        ("PUT", "/registry/models/sum/aliases/prod%0A", {"version": 1}, 400, "control character"),
        ("GET", "/registry/models/sum%0A", None, 400, "control character"),
        (
            "DELETE",
            "/registry/models/sum/aliases/prod?expected_revision=x",
            None,
            400,
            "expected_revision must be an integer",
        ),
        ("POST", "/registry/models/sum/uploads", {"filename": "model\u0000.onnx"}, 400, "control character"),
        ("POST", "/registry/models/sum/uploads", {"filename": "m" * 251 + ".onnx"}, 400, "at most 255 bytes"),
        (
            "POST",
            "/registry/models/sum%2F..%2Fx/uploads",
            {"filename": "model.onnx"},
            404,
            "no registry route",
        ),
        (
            "POST",
            "/registry/models/a..b/uploads",
            {"filename": "model.onnx"},
            400,
            "model name 'a..b' is not valid",
        ),
        (
            "GET",
            "/registry/models?token=garbage!",
            None,
            400,
            "the page token is not one this registry issued",
        ),
        (
            "GET",
            "/registry/models?token=eyJqdW5rIjogdHJ1ZX0=",
            None,
            400,
            "the page token is not one this registry issued",
        ),
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


def upload(module: ModuleType, name: str, artifact: Path, filename: str = "model.onnx") -> str:
    """Ask for an upload URL for model `name`, PUT the file there, and return its upload key."""
    status, answer = call(module, "POST", f"/registry/models/{name}/uploads", {"filename": filename})
    assert status == 201, answer
    put = urllib.request.Request(
        answer["upload_url"],
        data=artifact.read_bytes(),
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(put, timeout=30) as response:
        assert response.status == 200
    return str(answer["upload_key"])


def call_raw(module: ModuleType, method: str, path: str, raw: str) -> tuple[int, Any]:
    event = http_api_event(
        method=method, target=path, headers={"content-type": "application/json"}, body=raw.encode()
    )
    response: HttpResponse = http_response(module.handler(event, LocalLambdaContext()))
    return response.status, json.loads(response.body)


@pytest.mark.parametrize("metric", ['"NaN"', "NaN", "Infinity", "-Infinity", "1e309"])
def test_a_metric_that_is_not_a_finite_number_is_a_400_and_the_upload_can_be_registered_again(
    handler_module: ModuleType, artifacts: dict[str, Path], metric: str
) -> None:
    key = upload(handler_module, "sum", artifacts["sum"])
    body = f'{{"upload_key": "{key}", "metrics": {{"accuracy": {metric}}}}}'
    status, answer = call_raw(handler_module, "POST", "/registry/models/sum/versions", body)
    assert (status, answer) == (
        400,
        {"error": "invalid request: metrics.accuracy: Input should be a finite number"},
    )
    assert call(handler_module, "GET", "/registry/models/sum")[0] == 404
    # Nothing was lost: the same upload registers once the metric is a number.
    status, version = call(
        handler_module,
        "POST",
        "/registry/models/sum/versions",
        {"upload_key": key, "metrics": {"accuracy": 0.9}},
    )
    assert (status, version["metrics"]) == (201, {"accuracy": 0.9})
    for path in ("/registry/models/sum", "/registry/models/sum/versions/1"):
        assert call(handler_module, "GET", path)[0] == 200


def test_an_upload_key_registers_only_under_the_model_it_was_issued_for(
    handler_module: ModuleType, artifacts: dict[str, Path]
) -> None:
    key = upload(handler_module, "sum", artifacts["sum"])
    status, answer = call(handler_module, "POST", "/registry/models/other/versions", {"upload_key": key})
    assert (status, answer) == (400, {"error": f"upload key '{key}' was not issued for model 'other'"})
    status, version = call(handler_module, "POST", "/registry/models/sum/versions", {"upload_key": key})
    assert (status, version["name"]) == (201, "sum")


@pytest.mark.parametrize("kind", ["not-protobuf", "no-opset"])
def test_a_file_that_does_not_load_is_a_400_that_names_no_server_path(
    handler_module: ModuleType, artifacts: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    broken = (
        artifacts["broken"] if kind == "not-protobuf" else fakes.model_without_opset(tmp_path / "model.onnx")
    )
    key = upload(handler_module, "broken", broken)
    status, answer = call(handler_module, "POST", "/registry/models/broken/versions", {"upload_key": key})
    assert status == 400
    assert answer["error"].startswith("cannot register 'model.onnx': ONNX Runtime cannot load 'model.onnx'")
    assert not re.search(r"/(tmp|var|home|onnxruntime)|\.cc:\d", answer["error"]), answer


def test_a_model_name_taken_in_another_case_is_a_409_naming_the_existing_model(
    handler_module: ModuleType, dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    dynamo_registry.register("digits", artifacts["digits"])
    key = upload(handler_module, "Digits", artifacts["digits"])
    status, answer = call(handler_module, "POST", "/registry/models/Digits/versions", {"upload_key": key})
    assert status == 409
    assert answer == {
        "error": "model name 'Digits' is taken by model 'digits'; names are unique regardless of case"
    }


def test_labels_too_large_for_one_record_are_a_400(
    handler_module: ModuleType, artifacts: dict[str, Path]
) -> None:
    key = upload(handler_module, "sum", artifacts["sum"])
    body = {"upload_key": key, "labels": {f"label-{n}": "x" * 1000 for n in range(500)}}
    status, answer = call(handler_module, "POST", "/registry/models/sum/versions", body)
    assert status == 400
    assert "labels, metrics" in answer["error"], answer


def test_a_page_token_of_another_model_is_a_400(
    handler_module: ModuleType, dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    for name in ("a", "b"):
        dynamo_registry.register(name, artifacts["sum"])
        dynamo_registry.register(name, artifacts["sum"])
    status, page = call(handler_module, "GET", "/registry/models/a/versions?limit=1")
    assert status == 200 and page["next_token"]
    status, answer = call(handler_module, "GET", f"/registry/models/b/versions?token={page['next_token']}")
    assert (status, answer) == (
        400,
        {"error": "the page token is not one this registry issued for this listing"},
    )


def test_deleting_an_alias_on_its_revision_lets_a_promoted_model_be_deleted(
    handler_module: ModuleType, dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.promote("sum", "prod", 1)
    assert call(handler_module, "DELETE", "/registry/models/sum")[0] == 409
    status, answer = call(handler_module, "DELETE", "/registry/models/sum/aliases/prod?expected_revision=2")
    assert (status, answer) == (
        409,
        {"error": "alias 'prod' of model 'sum' is at revision 1, not 2; read it again"},
    )
    status, answer = call(handler_module, "DELETE", "/registry/models/sum/aliases/prod?expected_revision=1")
    assert (status, answer["action"], answer["previous"]) == (200, "delete", {"1": 100})
    status, history = call(handler_module, "GET", "/registry/models/sum/aliases/prod/history")
    assert [h["action"] for h in history["history"]] == ["delete", "promote"]
    assert call(handler_module, "GET", "/registry/models/sum/aliases/prod")[0] == 404
    assert call(handler_module, "DELETE", "/registry/models/sum/aliases/prod")[0] == 404
    assert call(handler_module, "DELETE", "/registry/models/sum") == (200, {"deleted": "sum"})


def test_a_model_with_an_unreadable_version_is_still_shown_with_the_version_reported(
    handler_module: ModuleType, dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.promote("sum", "prod", 1)
    dynamo_registry.store.client.update_item(  # type: ignore[attr-defined]
        TableName=dynamo_registry.store.table_name,  # type: ignore[attr-defined]
        Key={"pk": {"S": "M#sum"}, "sk": {"S": "V#0000000002"}},
        UpdateExpression="SET doc = :broken",
        ExpressionAttributeValues={":broken": {"S": '{"name": "sum", "metrics": {"accuracy": null}}'}},
    )
    status, shown = call(handler_module, "GET", "/registry/models/sum")
    assert status == 200, shown
    assert ([v["version"] for v in shown["versions"]], shown["unreadable"]) == ([1], ["version 2"])
    assert call(handler_module, "POST", "/registry/models/sum/versions/1/retire")[0] == 409  # prod serves it
    assert call(handler_module, "PUT", "/registry/models/sum/aliases/prod", {"version": 1})[0] == 200
    status, answer = call(handler_module, "GET", "/registry/models/sum/versions/2")
    assert status == 500
    assert answer["error"].startswith("version 2 of model 'sum' cannot be read: ")


@pytest.fixture
def publishing_module(
    dynamo_registry: Registry, aws_endpoint: str, artifacts: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    """The registry handler with EMF on (as in AWS), over a registry holding model `sum`."""
    dynamo_registry.register("sum", artifacts["sum"])
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("MAAS_REGISTRY_TABLE", dynamo_registry.store.table_name)  # type: ignore[attr-defined]
    monkeypatch.setenv("MAAS_ARTIFACT_BUCKET", dynamo_registry.artifacts.bucket)
    return load_handler_module(REGISTRY_HANDLER)


@pytest.mark.parametrize(
    "case",
    [
        ("PUT", "/registry/models/sum/aliases/prod", {"version": 99}, 404, "sum"),
        ("POST", "/registry/models/sum/versions", {"upload_key": 7}, 400, "sum"),
        ("GET", "/registry/models/random-1234", None, 404, "unknown"),
        ("PUT", "/registry/models/random-5678/aliases/prod", {"version": 1}, 404, "unknown"),
        ("POST", "/registry/models/random-9012/versions", {"upload_key": 7}, 400, "unknown"),
    ],
)
def test_a_4xx_of_the_registry_is_counted_under_its_model_and_unknown_names_stay_unknown(
    publishing_module: ModuleType, capsys: pytest.CaptureFixture[str], case: tuple[str, str, Any, int, str]
) -> None:
    method, path, body, status, model = case
    capsys.readouterr()
    assert call(publishing_module, method, path, body)[0] == status
    records = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    counted = [record["model"] for record in records if "Errors4xx" in record]
    assert counted == [model]


def _counted_models(capsys: pytest.CaptureFixture[str]) -> list[str]:
    records = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    return [record["model"] for record in records if "Requests" in record]


def test_a_success_for_a_name_of_no_model_is_counted_as_unknown_and_a_registration_under_its_model(
    publishing_module: ModuleType, capsys: pytest.CaptureFixture[str], artifacts: dict[str, Path]
) -> None:
    # An upload succeeds for any name: before, each name (and each case of `sum`) minted a series.
    capsys.readouterr()
    for name in ("minted-1", "SUM"):
        assert (
            call(publishing_module, "POST", f"/registry/models/{name}/uploads", {"filename": "m.onnx"})[0]
            == 201
        )
    assert call(publishing_module, "GET", "/registry/models/sum")[0] == 200
    assert _counted_models(capsys) == ["unknown", "unknown", "sum"]
    key = upload(publishing_module, "fresh", artifacts["sum"])
    capsys.readouterr()
    assert call(publishing_module, "POST", "/registry/models/fresh/versions", {"upload_key": key})[0] == 201
    assert _counted_models(capsys) == ["fresh"]


def test_a_registration_body_that_is_not_utf8_is_a_400_naming_the_byte_and_stores_nothing(
    handler_module: ModuleType, dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    # Before, the label was stored with U+FFFD in place of the bytes.
    key = upload(handler_module, "sum", artifacts["sum"])
    body = json.dumps({"upload_key": key, "labels": {"team": "@@"}}).encode().replace(b"@@", b"ok\xfe")
    event = http_api_event(
        method="POST",
        target="/registry/models/sum/versions",
        headers={"content-type": "application/json"},
        body=body,
    )
    # The bytes as they came (base64), even where they are not text.
    event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    response = http_response(handler_module.handler(event, LocalLambdaContext()))
    assert response.status == 400, response.body
    offset = body.index(b"\xfe")
    assert json.loads(response.body) == {
        "error": f"the request body is not UTF-8: byte {offset} (0xfe) cannot be decoded; a JSON body must be UTF-8"
    }
    assert not dynamo_registry.exists("sum")


@pytest.fixture
def small_limit_module(dynamo_registry: Registry, aws_endpoint: str) -> ModuleType:
    """The registry function as deployed with `registry.max_upload_mb: 1`."""
    return load_registry_handler(dynamo_registry, aws_endpoint, MAAS_MAX_UPLOAD_MB="1")


def test_an_upload_over_the_limit_is_refused_before_it_is_read_and_one_within_registers(
    small_limit_module: ModuleType, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    status, answer = call(
        small_limit_module, "POST", "/registry/models/big/uploads", {"filename": "model.onnx"}
    )
    assert (status, answer["max_bytes"]) == (201, 1024 * 1024)
    heavy = fakes.weighty_model(tmp_path / "model.onnx", megabytes=2)
    key = upload(small_limit_module, "big", heavy)
    status, refused = call(small_limit_module, "POST", "/registry/models/big/versions", {"upload_key": key})
    assert status == 400
    size = heavy.stat().st_size
    assert refused["error"].startswith(
        f"the upload at '{key}' is {size} bytes, over the registry API's limit of 1048576"
    )
    assert "maas models register" in refused["error"]
    assert call(small_limit_module, "GET", "/registry/models/big")[0] == 404
    # What can never be registered is not kept until the uploads expire.
    store = small_limit_module.registry.artifacts
    assert store.client.list_objects_v2(Bucket=store.bucket, Prefix=key)["KeyCount"] == 0
    # The limit is on size, not on the model: a small file under the same name registers.
    status, version = call(
        small_limit_module,
        "POST",
        "/registry/models/big/versions",
        {"upload_key": upload(small_limit_module, "big", artifacts["sum"])},
    )
    assert (status, version["version"]) == (201, 1), version


def test_an_upload_replaced_after_its_size_was_checked_is_not_registered(
    handler_module: ModuleType, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    """The check and the download name the same bytes: the download is pinned to the checked ETag."""
    key = upload(handler_module, "sum", artifacts["sum"])
    store = handler_module.registry.artifacts
    checked = store._listed

    def listed_then_replaced(listed_key: str) -> Any:
        entry = checked(listed_key)
        store.client.put_object(Bucket=store.bucket, Key=listed_key, Body=b"x" * 10_000_000)
        return entry

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "_listed", listed_then_replaced)
        status, answer = call(handler_module, "POST", "/registry/models/sum/versions", {"upload_key": key})
    assert (status, answer) == (
        400,
        {"error": f"the upload at '{key}' changed while it was being registered; try again"},
    )
    assert call(handler_module, "GET", "/registry/models/sum")[0] == 404


def test_registering_an_upload_that_was_never_made_names_the_missing_step(handler_module: ModuleType) -> None:
    status, answer = call(handler_module, "POST", "/registry/models/sum/uploads", {"filename": "model.onnx"})
    status, answer = call(
        handler_module, "POST", "/registry/models/sum/versions", {"upload_key": answer["upload_key"]}
    )
    assert status == 400
    assert answer["error"].endswith("PUT the file to its upload_url first")
