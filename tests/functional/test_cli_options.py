"""The command line as scripts use it: `--json` and a group's options work before or after
the verb, every option says what it is for, and every --help states the exit codes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from maas.cli import build_parser, main
from maas.registry import Registry


def registered(registry: Registry, artifacts: dict[str, Path]) -> Registry:
    registry.register("sum", artifacts["sum"], labels={"team": "core"})
    registry.promote("sum", "prod", 1)
    return registry


def where(registry: Registry, endpoint: str) -> list[str]:
    table = registry.store.table_name  # type: ignore[attr-defined]
    return ["--endpoint-url", endpoint, "--table", table, "--bucket", registry.artifacts.bucket]


def test_json_and_the_registry_options_may_follow_the_verb(
    capsys: pytest.CaptureFixture[str],
    dynamo_registry: Registry,
    aws_endpoint: str,
    artifacts: dict[str, Path],
) -> None:
    registry = registered(dynamo_registry, artifacts)

    assert main(["models", "show", "sum", "1", *where(registry, aws_endpoint), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == {"team": "core"}

    assert main(["models", "show", "sum", "--json", *where(registry, aws_endpoint)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [a["alias"] for a in shown["aliases"]] == ["prod"]


def test_options_before_the_verb_are_not_reset_by_the_verb(
    capsys: pytest.CaptureFixture[str],
    dynamo_registry: Registry,
    aws_endpoint: str,
    artifacts: dict[str, Path],
) -> None:
    registry = registered(dynamo_registry, artifacts)

    assert main(["models", "--json", *where(registry, aws_endpoint), "list"]) == 0
    assert [m["name"] for m in json.loads(capsys.readouterr().out)] == ["sum"]

    # Split around the verb: the table before it, the endpoint and --json after.
    table = registry.store.table_name  # type: ignore[attr-defined]
    args = ["models", "--table", table, "--bucket", registry.artifacts.bucket, "history", "sum"]
    assert main([*args, "--endpoint-url", aws_endpoint, "--json"]) == 0
    assert [c["action"] for c in json.loads(capsys.readouterr().out)] == ["promote"]


def test_batch_takes_its_options_after_the_verb_too(
    capsys: pytest.CaptureFixture[str], dynamo_registry: Registry, aws_endpoint: str
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    dynamo_registry.artifacts.client.put_object(Bucket=bucket, Key="inputs/sum/rows.jsonl", Body=b"[1]\n")

    assert main(["batch", "list", "--bucket", bucket, "--endpoint-url", aws_endpoint, "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["input"] == "inputs/sum/rows.jsonl"
    assert listed["state"] == "pending"


def parsers(
    parser: argparse.ArgumentParser, path: str = "maas"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, f"{path} {name}")


COMMANDS = list(parsers(build_parser()))


@pytest.mark.parametrize(("command", "parser"), COMMANDS, ids=[command for command, _ in COMMANDS])
def test_every_option_has_a_help_text(command: str, parser: argparse.ArgumentParser) -> None:
    silent = [
        action.option_strings[0] if action.option_strings else action.dest
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction)
        and (not action.help or action.help == argparse.SUPPRESS)
    ]
    assert silent == [], f"`{command}` has options without help: {silent}"


@pytest.mark.parametrize(("command", "parser"), COMMANDS, ids=[command for command, _ in COMMANDS])
def test_every_help_states_the_exit_codes(command: str, parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    assert "exit codes:\n  0  " in text, f"`{command} --help` does not state its exit codes"
    assert "  2  " in text


def test_the_documented_exit_code_is_the_one_returned(
    capsys: pytest.CaptureFixture[str], dynamo_registry: Registry, aws_endpoint: str
) -> None:
    # `maas models show --help` says 2 for a name that does not exist.
    assert main(["models", "show", "nope", *where(dynamo_registry, aws_endpoint)]) == 2
    assert capsys.readouterr().err.startswith("maas: error: model 'nope' not found")
    with pytest.raises(SystemExit) as usage:
        main(["models", "show"])
    assert usage.value.code == 2
