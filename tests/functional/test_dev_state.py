"""`maas dev` after a restart: what was registered, promoted and uploaded is still there, the
models folder is not registered a second time, and one broken file does not stop the others."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from maas.local.dev import register_directory
from maas.local.state import LocalState
from maas.registry import ArtifactStore, DynamoDBStore, Registry, table_definition
from tests import fakes
from tests.functional.conftest import aws_client


@pytest.fixture
def names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"registry-{suffix}", f"artifacts-{suffix}"


def fresh_aws(endpoint: str, table: str, bucket: str) -> Registry:
    """An empty registry table and bucket of these names, as a new maas dev would make them."""
    dynamodb, s3 = aws_client("dynamodb", endpoint), aws_client("s3", endpoint)
    dynamodb.create_table(**table_definition(table))
    s3.create_bucket(Bucket=bucket)
    return Registry(DynamoDBStore(table, client=dynamodb), ArtifactStore(bucket, client=s3), user="tester")


def forget(endpoint: str, table: str, bucket: str) -> None:
    """What stopping maas dev does to the embedded AWS: everything in it is gone."""
    dynamodb, s3 = aws_client("dynamodb", endpoint), aws_client("s3", endpoint)
    dynamodb.delete_table(TableName=table)
    for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=listed["Key"])
    s3.delete_bucket(Bucket=bucket)


def test_registered_versions_aliases_and_uploads_come_back_after_a_restart(
    aws_endpoint: str, names: tuple[str, str], artifacts: dict[str, Path], tmp_path: Path
) -> None:
    table, bucket = names
    registry = fresh_aws(aws_endpoint, table, bucket)
    registry.register("sum", artifacts["sum"], metrics={"accuracy": 0.5})
    registry.register("sum", artifacts["sum-v2"])
    registry.promote("sum", "prod", 1)
    registry.promote("sum", "prod", 2)
    registry.rollback("sum", "prod")
    s3 = aws_client("s3", aws_endpoint)
    s3.put_object(
        Bucket=bucket, Key="outputs/sum/rows.jsonl", Body=b'{"row": 0}\n', ContentType="application/x-ndjson"
    )
    state = LocalState(tmp_path / "state", tables=[table], bucket=bucket)
    state.save(aws_client("dynamodb", aws_endpoint), s3)

    forget(aws_endpoint, table, bucket)
    restarted = fresh_aws(aws_endpoint, table, bucket)
    restored = state.restore(aws_client("dynamodb", aws_endpoint), s3)

    assert restored.objects == 3  # two artifacts and one output
    assert [v.version for v in restarted.versions("sum").items] == [1, 2]
    assert restarted.get("sum", 1).metrics == {"accuracy": 0.5}
    assert restarted.alias("sum", "prod").weights == {1: 100}
    assert [c.action for c in restarted.history("sum", "prod").items] == ["rollback", "promote", "promote"]
    # Version numbers keep counting from where they were, and the artifacts verify.
    assert restarted.register("sum", artifacts["sum"]).version == 3
    second = restarted.get("sum", 2)
    fetched = restarted.artifacts.fetch(second.artifact_key, second.sha256, tmp_path / "fetched")
    assert fetched.read_bytes() == artifacts["sum-v2"].read_bytes()
    output = s3.get_object(Bucket=bucket, Key="outputs/sum/rows.jsonl")
    assert (output["Body"].read(), output["ContentType"]) == (b'{"row": 0}\n', "application/x-ndjson")


def test_a_second_snapshot_replaces_the_first_and_stores_each_object_once(
    aws_endpoint: str, names: tuple[str, str], artifacts: dict[str, Path], tmp_path: Path
) -> None:
    table, bucket = names
    registry = fresh_aws(aws_endpoint, table, bucket)
    registry.register("sum", artifacts["sum"])
    s3 = aws_client("s3", aws_endpoint)
    s3.put_object(Bucket=bucket, Key="inputs/sum/a.jsonl", Body=b"[1, 2]\n")
    s3.put_object(Bucket=bucket, Key="inputs/sum/b.jsonl", Body=b"[1, 2]\n")  # the same bytes
    state = LocalState(tmp_path / "state", tables=[table], bucket=bucket)
    state.save(aws_client("dynamodb", aws_endpoint), s3)
    s3.delete_object(Bucket=bucket, Key="inputs/sum/a.jsonl")
    state.save(aws_client("dynamodb", aws_endpoint), s3)

    assert len(list((state.snapshot / "objects").iterdir())) == 2  # the artifact, one input
    forget(aws_endpoint, table, bucket)
    fresh_aws(aws_endpoint, table, bucket)
    state.restore(aws_client("dynamodb", aws_endpoint), s3)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "inputs/sum/a.jsonl" not in keys and "inputs/sum/b.jsonl" in keys
    assert not (tmp_path / "state" / "snapshot.partial").exists()


def test_a_snapshot_of_another_format_is_refused_not_half_restored(
    aws_endpoint: str, names: tuple[str, str], tmp_path: Path
) -> None:
    table, bucket = names
    fresh_aws(aws_endpoint, table, bucket)
    state = LocalState(tmp_path / "state", tables=[table], bucket=bucket)
    state.snapshot.mkdir(parents=True)
    (state.snapshot / "bucket.json").write_text('{"format": 99, "objects": {}}')
    with pytest.raises(ValueError, match="another format"):
        state.restore(aws_client("dynamodb", aws_endpoint), aws_client("s3", aws_endpoint))


def models_folder(root: Path, artifacts: dict[str, Path]) -> Path:
    for name, version, source in (("sum", "1", "sum"), ("sum", "2", "sum-v2"), ("digits", "1", "digits")):
        (root / name / version).mkdir(parents=True)
        (root / name / version / "model.onnx").write_bytes(artifacts[source].read_bytes())
    return root


def test_the_models_folder_registered_again_after_a_restart_adds_no_version_and_keeps_prod(
    dynamo_registry: Registry, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    root = models_folder(tmp_path / "models", artifacts)
    assert register_directory(dynamo_registry, root) == ["digits", "sum"]
    assert dynamo_registry.alias("sum", "prod").weights == {2: 100}
    dynamo_registry.promote("sum", "prod", 1)  # the user moves prod back

    assert register_directory(dynamo_registry, root) == ["digits", "sum"]
    assert [v.version for v in dynamo_registry.versions("sum").items] == [1, 2]
    assert dynamo_registry.alias("sum", "prod").weights == {1: 100}
    # A new file in the folder is registered, and prod, which exists, stays where the user put it.
    (root / "sum" / "3").mkdir()
    fakes.sum_model(root / "sum" / "3" / "model.onnx", plus=2.0)
    register_directory(dynamo_registry, root)
    assert [v.version for v in dynamo_registry.versions("sum").items] == [1, 2, 3]
    assert dynamo_registry.alias("sum", "prod").weights == {1: 100}


def test_one_file_that_cannot_be_registered_is_reported_and_the_others_are_served(
    dynamo_registry: Registry, artifacts: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = models_folder(tmp_path / "models", artifacts)
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "1" / "model.onnx").write_bytes(b"not a model at all")
    with caplog.at_level(logging.WARNING, logger="maas.local.dev"):
        served = register_directory(dynamo_registry, root)
    assert served == ["digits", "sum"]
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "maas.local.dev"]
    assert warning.startswith(f"skipped {root / 'broken' / '1' / 'model.onnx'}: cannot register 'model.onnx'")
    assert not dynamo_registry.exists("broken")
