"""A SageMaker model managed through the registry HTTP API alone, on `maas dev`: registering
packs it for Triton, promoting it moves its endpoint (the reconciler on the registry table's
stream does it, not the caller), the alias shows where its endpoint stands, and a reconciler
failure is recorded with its reason and recovers once its cause is gone."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from maas.local.demo import build_digits_onnx
from tests.e2e.conftest import DevServer, running_dev_server
from tests.sagemaker_stack import deploy_like_the_stack

pytestmark = pytest.mark.e2e

BUCKET = "maas-artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with running_dev_server(tmp_path_factory.mktemp("control-models"), "--no-demo") as dev:
        yield dev


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("large") / "model.onnx"
    build_digits_onnx(path, quantize=False)
    return path


def api(server: DevServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        server.url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def aws(server: DevServer, service: str) -> Any:
    return boto3.client(service, endpoint_url=server.aws_endpoint, region_name="us-east-1")


def register_through_the_api(server: DevServer, model: Path, **options: Any) -> dict[str, Any]:
    status, upload = api(server, "POST", "/registry/models/large/uploads", {"filename": "model.onnx"})
    assert status == 201, upload
    # A content type of its own: urllib's default (a form) makes moto's S3 wait for more body.
    put = urllib.request.Request(
        upload["upload_url"],
        data=model.read_bytes(),
        method="PUT",
        headers={"content-type": "application/octet-stream"},
    )
    with urllib.request.urlopen(put, timeout=60) as response:
        assert response.status == 200
    status, version = api(
        server,
        "POST",
        "/registry/models/large/versions",
        {"upload_key": upload["upload_key"], "target": "sagemaker", **options},
    )
    assert status == 201, version
    return version


def target_states_until(
    server: DevServer, wanted: set[str], *, revision: int, limit: float = 60
) -> list[str]:
    """The states `GET .../aliases/prod/target` shows for `revision`, polled until one in `wanted`."""
    seen: list[str] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status, answer = api(server, "GET", "/registry/models/large/aliases/prod/target")
        assert status == 200, answer
        target = answer["target"]
        if target is not None and target["revision"] == revision:
            if not seen or seen[-1] != target["state"]:
                seen.append(target["state"])
            if target["state"] in wanted:
                return seen
        time.sleep(0.2)
    raise AssertionError(f"the target of prod r{revision} never became {wanted}; seen {seen}")


def served_variants(server: DevServer, endpoint: str) -> list[str]:
    described = aws(server, "sagemaker").describe_endpoint(EndpointName=endpoint)
    return [variant["VariantName"] for variant in described["ProductionVariants"]]


def test_a_version_registered_through_the_api_for_sagemaker_is_packed_for_triton(
    server: DevServer, onnx_file: Path
) -> None:
    version = register_through_the_api(
        server, onnx_file, triton={"max_batch_size": 8, "preferred_batch_sizes": [4]}
    )
    assert version["version"] == 1
    body = aws(server, "s3").get_object(Bucket=BUCKET, Key="artifacts/large/v1/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert sorted(archive.getnames()) == ["large/1/model.onnx", "large/config.pbtxt"]
        config = archive.extractfile("large/config.pbtxt").read().decode()  # type: ignore[union-attr]
    assert "max_batch_size: 8" in config
    assert "preferred_batch_size: [ 4 ]" in config or "preferred_batch_size: 4" in config


def test_promoting_through_the_api_moves_the_endpoint_and_the_alias_shows_it_get_there(
    server: DevServer, onnx_file: Path
) -> None:
    register_through_the_api(server, onnx_file)  # version 2
    endpoint = deploy_like_the_stack(server.aws_endpoint, BUCKET, "large", 1, scaling=False)

    status, alias = api(server, "PUT", "/registry/models/large/aliases/prod", {"version": 1})
    assert status == 200, alias
    target_states_until(server, {"in_service"}, revision=alias["revision"])

    status, alias = api(server, "PUT", "/registry/models/large/aliases/prod", {"version": 2})
    assert status == 200, alias
    # The embedded SageMaker takes 2 s over an update: the update is seen under way, then done.
    seen = target_states_until(server, {"in_service", "failed"}, revision=alias["revision"])
    assert seen[-1] == "in_service", seen
    assert "updating" in seen, seen
    assert served_variants(server, endpoint) == ["v2"]
    status, answer = api(server, "GET", "/registry/models/large/aliases/prod/target")
    assert answer["target"]["endpoint"] == endpoint
    assert any("blue/green" in line for line in answer["target"]["events"]), answer


def test_a_failed_reconcile_is_recorded_with_its_reason_and_recovers_when_its_cause_is_gone(
    server: DevServer, onnx_file: Path
) -> None:
    register_through_the_api(server, onnx_file)  # version 3
    # The fault: version 3's Triton package is gone, so no SageMaker model can be made for it.
    aws(server, "s3").delete_object(Bucket=BUCKET, Key="artifacts/large/v3/model.tar.gz")
    status, alias = api(server, "PUT", "/registry/models/large/aliases/prod", {"version": 3})
    assert status == 200, alias

    seen = target_states_until(server, {"failed"}, revision=alias["revision"])
    assert seen[-1] == "failed"
    _, answer = api(server, "GET", "/registry/models/large/aliases/prod/target")
    assert "package" in answer["target"]["reason"], answer
    assert served_variants(server, "maas-large") == ["v2"]  # still serving what it served

    # The cause goes away (the version is packed again); the reconciler's next try succeeds.
    done = subprocess.run(
        [sys.executable, "-m", "maas.cli", "models", "package", "large", "3"],
        env={**os.environ, "AWS_ENDPOINT_URL": server.aws_endpoint},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = target_states_until(server, {"in_service"}, revision=alias["revision"])
    assert served_variants(server, "maas-large") == ["v3"]


def test_the_cli_shows_the_target_state_of_a_sagemaker_alias(server: DevServer) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "maas.cli", "models", "show", "large", "--json"],
        env={**os.environ, "AWS_ENDPOINT_URL": server.aws_endpoint},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["targets"]["prod"]["state"] == "in_service"
    assert shown["targets"]["prod"]["endpoint"] == "maas-large"
