"""`maas models` against the embedded AWS: readable tables, --json, and errors without traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maas.cli import main
from maas.registry import Registry


def run(
    capsys: pytest.CaptureFixture[str], registry: Registry, endpoint: str, *args: str
) -> tuple[int, str, str]:
    table = registry.store.table_name  # type: ignore[attr-defined]
    common = ["models", "--endpoint-url", endpoint, "--table", table, "--bucket", registry.artifacts.bucket]
    code = main([*common, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_register_then_show_as_a_table_and_as_json(
    capsys: pytest.CaptureFixture[str],
    dynamo_registry: Registry,
    aws_endpoint: str,
    artifacts: dict[str, Path],
) -> None:
    code, out, _ = run(
        capsys,
        dynamo_registry,
        aws_endpoint,
        "register",
        "sum",
        str(artifacts["sum"]),
        "--label",
        "team=core",
    )
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == [
        "VERSION", "STATUS", "FRAMEWORK", "TARGET", "SIZE", "SHA256", "BY", "CREATED", "COMMIT", "AUTHOR"
    ]  # fmt: skip
    assert row.split()[:4] == ["1", "active", "onnx", "lambda"]

    assert run(capsys, dynamo_registry, aws_endpoint, "promote", "sum", "1")[0] == 0
    code, out, _ = run(capsys, dynamo_registry, aws_endpoint, "show", "sum")
    assert "prod   v1" in out

    code, out, _ = run(capsys, dynamo_registry, aws_endpoint, "--json", "show", "sum", "1")
    assert json.loads(out)["labels"] == {"team": "core"}

    code, out, _ = run(capsys, dynamo_registry, aws_endpoint, "--json", "list")
    assert [m["name"] for m in json.loads(out)] == ["sum"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nope"], "maas: error: model 'nope' not found"),
        (["register", "sum", "/no/such/file.onnx"], "maas: error: no artifact file at /no/such/file.onnx"),
        (["canary", "sum", "1=fifty"], "maas: error: canary weights look like VERSION=PERCENT"),
        (["register", "sum", "x.onnx", "--metric", "accuracy"], "must look like KEY=VALUE"),
    ],
)
def test_mistakes_are_explained_in_one_line_with_exit_code_2(
    capsys: pytest.CaptureFixture[str],
    dynamo_registry: Registry,
    aws_endpoint: str,
    args: list[str],
    message: str,
) -> None:
    Path("x.onnx").write_bytes(b"")  # exists, so the metric check is the one that speaks
    try:
        code, _, err = run(capsys, dynamo_registry, aws_endpoint, *args)
    finally:
        Path("x.onnx").unlink()
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_unalias_deletes_an_alias_so_the_model_can_be_deleted(
    capsys: pytest.CaptureFixture[str],
    dynamo_registry: Registry,
    aws_endpoint: str,
    artifacts: dict[str, Path],
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.promote("sum", "prod", 1)
    code, _, err = run(
        capsys, dynamo_registry, aws_endpoint, "unalias", "sum", "prod", "--expected-revision", "7"
    )
    assert (code, err.strip()) == (
        2,
        "maas: error: alias 'prod' of model 'sum' is at revision 1, not 7; read it again",
    )
    code, out, _ = run(capsys, dynamo_registry, aws_endpoint, "--json", "unalias", "sum", "prod")
    assert code == 0
    assert json.loads(out)["action"] == "delete"
    code, out, _ = run(capsys, dynamo_registry, aws_endpoint, "history", "sum")
    assert [line.split()[:3] for line in out.splitlines()[1:]] == [
        ["2", "delete", "-"],
        ["1", "promote", "v1"],
    ]
    dynamo_registry.delete("sum")


def test_show_lists_every_version_and_reports_an_unreadable_one_without_failing(
    capsys: pytest.CaptureFixture[str],
    dynamo_registry: Registry,
    aws_endpoint: str,
    artifacts: dict[str, Path],
) -> None:
    for _ in range(101):
        dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.store.client.update_item(  # type: ignore[attr-defined]
        TableName=dynamo_registry.store.table_name,  # type: ignore[attr-defined]
        Key={"pk": {"S": "M#sum"}, "sk": {"S": "V#0000000002"}},
        UpdateExpression="SET doc = :broken",
        ExpressionAttributeValues={":broken": {"S": '{"name": "sum", "metrics": {"accuracy": null}}'}},
    )
    code, out, err = run(capsys, dynamo_registry, aws_endpoint, "--json", "show", "sum")
    assert code == 0, err
    assert [v["version"] for v in json.loads(out)["versions"]] == [1, *range(3, 102)]
    assert "maas: warning: version 2 of model 'sum' cannot be read" in err
