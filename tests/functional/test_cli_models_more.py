"""`maas models download` and `maas models delete` against the embedded AWS: a user gets back
the very bytes registered (or nothing, when S3 holds other bytes), and deletes a model once
nothing points into it, told how when something still does."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from maas.registry import Registry
from tests.functional.test_cli_models import run


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_download_writes_the_registered_bytes(
    capsys: pytest.CaptureFixture[str],
    dynamo_registry: Registry,
    aws_endpoint: str,
    artifacts: dict[str, Path],
    here: Path,
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])
    version = dynamo_registry.register("sum", artifacts["sum-v2"])

    target = here / "sum-2.onnx"
    code, out, _ = run(
        capsys, dynamo_registry, aws_endpoint, "download", "sum", "2", "-o", str(target), "--json"
    )
    assert code == 0
    assert target.read_bytes() == artifacts["sum-v2"].read_bytes()
    assert json.loads(out)["sha256"] == version.sha256

    code, out, _ = run(
        capsys, dynamo_registry, aws_endpoint, "download", "sum", "1"
    )  # <name>-v<version> here
    assert code == 0
    assert (here / "sum-v1.onnx").read_bytes() == artifacts["sum"].read_bytes()
    assert "verified" in out
    assert sorted(p.name for p in here.iterdir()) == ["sum-2.onnx", "sum-v1.onnx"]  # no scratch left


def test_download_refuses_an_artifact_changed_in_s3_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    dynamo_registry: Registry,
    aws_endpoint: str,
    artifacts: dict[str, Path],
    tmp_path: Path,
) -> None:
    version = dynamo_registry.register("sum", artifacts["sum"])
    s3 = dynamo_registry.artifacts.client
    s3.put_object(Bucket=dynamo_registry.artifacts.bucket, Key=version.artifact_key, Body=b"tampered")

    code, _, err = run(capsys, dynamo_registry, aws_endpoint, "download", "sum", "1", "-o", str(tmp_path))
    assert code == 2
    assert f"has sha256 {hashlib.sha256(b'tampered').hexdigest()}" in err
    assert "will not be loaded" in err
    assert list(tmp_path.iterdir()) == []


def test_download_of_a_version_that_does_not_exist_says_so(
    capsys: pytest.CaptureFixture[str],
    dynamo_registry: Registry,
    aws_endpoint: str,
    artifacts: dict[str, Path],
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])
    code, _, err = run(capsys, dynamo_registry, aws_endpoint, "download", "sum", "7")
    assert code == 2
    assert "maas: error: model 'sum' version '7' not found" in err


def test_delete_is_refused_while_an_alias_remains_and_says_how_to_remove_it(
    capsys: pytest.CaptureFixture[str],
    dynamo_registry: Registry,
    aws_endpoint: str,
    artifacts: dict[str, Path],
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.promote("sum", "prod", 1)
    dynamo_registry.promote("sum", "staging", 1)

    code, _, err = run(capsys, dynamo_registry, aws_endpoint, "delete", "sum")
    assert code == 2
    assert "model 'sum' still has alias(es) prod, staging" in err
    assert "`maas models unalias sum prod`, `maas models unalias sum staging`" in err
    assert dynamo_registry.exists("sum")

    for alias in ("prod", "staging"):
        assert run(capsys, dynamo_registry, aws_endpoint, "unalias", "sum", alias)[0] == 0
    code, out, _ = run(capsys, dynamo_registry, aws_endpoint, "delete", "sum")
    assert code == 0
    assert out.split() == ["MODEL", "ACTION", "sum", "deleted"]
    assert not dynamo_registry.exists("sum")
    code, _, err = run(capsys, dynamo_registry, aws_endpoint, "show", "sum")
    assert (code, err.strip()) == (2, "maas: error: model 'sum' not found")


def test_delete_of_a_model_that_does_not_exist_says_so(
    capsys: pytest.CaptureFixture[str], dynamo_registry: Registry, aws_endpoint: str
) -> None:
    code, _, err = run(capsys, dynamo_registry, aws_endpoint, "delete", "nope")
    assert (code, err.strip()) == (2, "maas: error: model 'nope' not found")
