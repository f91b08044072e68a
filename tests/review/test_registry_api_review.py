"""Adversarial tests of the registry HTTP API over the control plane (maas/http/registry.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maas.control import ControlPlane
from maas.errors import InvalidInput
from maas.http.registry import build_registry_app
from maas.local.context import LocalLambdaContext
from maas.local.events import http_api_event, http_response
from maas.registry import Registry
from tests.functional.conftest import make_registry


@pytest.fixture
def registry(aws_endpoint: str) -> Registry:
    return make_registry("dynamodb", aws_endpoint)


def call(app: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    event = http_api_event(method=method, target=path, headers={"content-type": "application/json"}, body=raw)
    response = http_response(app.resolve(event, LocalLambdaContext()))
    return response.status, json.loads(response.body)


def upload(registry: Registry, name: str, artifact: Path) -> str:
    _, key = registry.artifacts.presigned_upload(name, "model.onnx")
    registry.artifacts.client.put_object(
        Bucket=registry.artifacts.bucket, Key=key, Body=artifact.read_bytes()
    )
    return key


def uploads_left(registry: Registry) -> int:
    listed = registry.artifacts.client.list_objects_v2(Bucket=registry.artifacts.bucket, Prefix="uploads/")
    return int(listed["KeyCount"])


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/registry/models/nope/aliases/prod/target", "nope"),
        ("/registry/models/sum/aliases/nope/target", "nope"),
    ],
)
def test_the_target_of_an_unknown_model_or_alias_is_a_404_in_the_error_shape(
    registry: Registry, model_dir: Path, path: str, needle: str
) -> None:
    registry.register("sum", model_dir / "sum" / "1" / "model.onnx")
    app = build_registry_app(ControlPlane(registry))
    status, body = call(app, "GET", path)
    assert status == 404, body
    assert set(body) == {"error"} and needle in body["error"]


def test_a_lambda_only_alias_has_a_null_target(registry: Registry, model_dir: Path) -> None:
    registry.register("sum", model_dir / "sum" / "1" / "model.onnx")
    registry.promote("sum", "prod", 1)
    app = build_registry_app(ControlPlane(registry))
    assert call(app, "GET", "/registry/models/sum/aliases/prod/target") == (200, {"target": None})


def test_a_deleted_alias_target_is_a_404(registry: Registry, model_dir: Path) -> None:
    registry.register("sum", model_dir / "sum" / "1" / "model.onnx", target="sagemaker")
    registry.promote("sum", "prod", 1)
    registry.delete_alias("sum", "prod")
    app = build_registry_app(ControlPlane(registry))
    status, body = call(app, "GET", "/registry/models/sum/aliases/prod/target")
    assert status == 404 and set(body) == {"error"}, body


@pytest.mark.parametrize(
    "triton",
    [
        {"max_batch_size": 0},
        {"max_batch_size": 4, "preferred_batch_sizes": [8]},
        {"instance_kind": "KIND_TPU"},
        {"unknown": 1},
        "fast",
    ],
)
def test_bad_triton_options_are_a_clear_400_and_register_nothing(
    registry: Registry, model_dir: Path, triton: Any
) -> None:
    key = upload(registry, "sum", model_dir / "sum" / "1" / "model.onnx")
    app = build_registry_app(ControlPlane(registry))
    status, body = call(
        app,
        "POST",
        "/registry/models/sum/versions",
        {"upload_key": key, "target": "sagemaker", "triton": triton},
    )
    assert status == 400, body
    assert set(body) == {"error"} and "triton" in body["error"], body
    assert not registry.exists("sum")


def test_triton_options_for_a_lambda_version_are_refused_not_ignored(
    registry: Registry, model_dir: Path
) -> None:
    key = upload(registry, "sum", model_dir / "sum" / "1" / "model.onnx")
    app = build_registry_app(ControlPlane(registry))
    status, body = call(
        app, "POST", "/registry/models/sum/versions", {"upload_key": key, "triton": {"max_batch_size": 64}}
    )
    assert status == 400, body


def test_a_smaller_max_batch_size_alone_is_accepted(registry: Registry, model_dir: Path) -> None:
    """{"max_batch_size": 8} alone is refused: the default preferred sizes [8, 16] exceed it."""
    key = upload(registry, "sum", model_dir / "sum" / "1" / "model.onnx")
    app = build_registry_app(ControlPlane(registry))
    status, body = call(
        app,
        "POST",
        "/registry/models/sum/versions",
        {"upload_key": key, "target": "sagemaker", "triton": {"max_batch_size": 8}},
    )
    assert status == 201, body


def test_a_packaging_failure_leaves_no_half_registered_version(
    registry: Registry, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registering for SageMaker is register-then-package; when packing fails the API answers
    an error, but is the version left registered (with no package) and the upload left behind?"""
    from maas.sagemaker import package

    def broken(*args: Any, **kwargs: Any) -> Path:
        raise InvalidInput("Triton cannot take this graph")

    monkeypatch.setattr(package, "write_package", broken)
    key = upload(registry, "sum", model_dir / "sum" / "1" / "model.onnx")
    app = build_registry_app(ControlPlane(registry))
    status, body = call(
        app, "POST", "/registry/models/sum/versions", {"upload_key": key, "target": "sagemaker"}
    )
    assert status >= 400, body
    registered = registry.exists("sum") and [v.version for v in registry.versions("sum").items]
    assert not registered, f"answered {status} {body} but version(s) {registered} stay registered"
    # The upload stays for a retry with other options; uploads/ expires by the bucket's lifecycle.
    assert uploads_left(registry) == 1


def test_registering_for_sagemaker_through_the_api_fits_the_functions_tmp(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry function's /tmp is sized for two copies of the largest upload (2 x
    max_upload_mb + 256 MB, infra/maas_stack/registry_function.py): the upload, and the Triton
    package made from it. Packing must not fetch the artifact again (a third copy)."""
    import tempfile

    from maas.local.demo import build_digits_onnx
    from maas.sagemaker import package

    artifact = tmp_path / "in" / "model.onnx"
    artifact.parent.mkdir()
    build_digits_onnx(artifact, quantize=False)
    size = artifact.stat().st_size
    tmp = tmp_path / "lambda-tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    peak: list[int] = []
    original = package.write_package

    def measured(target: Path, *args: Any, **kwargs: Any) -> Path:
        done = original(target, *args, **kwargs)
        peak.append(sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file()))
        return done

    monkeypatch.setattr(package, "write_package", measured)
    key = upload(registry, "big", artifact)
    app = build_registry_app(ControlPlane(registry))
    status, body = call(
        app, "POST", "/registry/models/big/versions", {"upload_key": key, "target": "sagemaker"}
    )
    assert status == 201, body
    copies = peak[0] / size
    assert copies < 2, f"{copies:.1f} copies of a {size}-byte model in /tmp at once"
