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
