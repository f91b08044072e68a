"""What the `maas` commands share: AWS clients, `--json` and the tables it replaces, progress
bars, options a group accepts before or after its verb, and the exit codes `--help` states."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from maas.control import ControlPlane
    from maas.registry import Registry

# `main` turns every MaasError (and AWS's own refusals) into one line on stderr and exit 2;
# anything else is a bug, and Python's traceback exits 1.
FAILED = (
    "2  refused or failed: bad usage, a name that does not exist, invalid input,\n"
    "a conflict, AWS or the API unreachable; the reason follows `error:` on stderr"
)
UNEXPECTED = "1  an unexpected failure: Python prints its traceback (please report it)"


def exit_codes(*lines: str) -> str:
    """An epilog listing a command's exit codes, one per line ("CODE  meaning", continued after
    a newline)."""
    return "exit codes:\n" + "\n".join("  " + line.replace("\n", "\n     ") for line in lines)


# Most commands either do what they were asked or say why not.
EXIT_CODES = exit_codes("0  done", UNEXPECTED, FAILED)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's, except that text already laid out in lines (the exit codes) stays as it is."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class Verbs:
    """Adds the verbs of a command group, each with the group's shared options (so that they
    may follow the verb: `maas models show digits --json`) and its exit codes."""

    def __init__(self, actions: Any, shared: argparse.ArgumentParser) -> None:
        self.actions = actions
        self.shared = shared

    def add(self, name: str, *, epilog: str = EXIT_CODES, **options: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self.actions.add_parser(
            name,
            parents=[self.shared],
            epilog=epilog,
            formatter_class=HelpFormatter,
            **options,
        )
        return parser


def shared_options(add: Callable[[argparse.ArgumentParser, bool], None]) -> argparse.ArgumentParser:
    """A parent parser with the options `add` puts on a group, for its verbs. On a verb they
    default to SUPPRESS: argparse copies a verb's defaults over the group's, and a missing
    option must not reset `--json` or `--table` given before the verb."""
    parent = argparse.ArgumentParser(add_help=False)
    add(parent, True)
    return parent


def default(value: Any, on_verb: bool) -> Any:
    """The default of a shared option: its own on the group, none on a verb (see shared_options)."""
    return argparse.SUPPRESS if on_verb else value


def add_json_option(parser: argparse.ArgumentParser, on_verb: bool = False) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False, on_verb),
        help="print JSON instead of tables, for scripts",
    )


def aws_client(service: str, endpoint_url: str | None) -> Any:
    """A boto3 client for AWS, or for the local stack when the endpoint is on this machine."""
    import boto3

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    session = boto3.session.Session()
    options: dict[str, Any] = {"endpoint_url": endpoint}
    if endpoint is not None and any(host in endpoint for host in ("127.0.0.1", "localhost")):
        # The local stack takes any credentials; a laptop may have none, or real ones to keep out of it.
        options.update(
            region_name=session.region_name or "us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    return session.client(service, **options)


def emit(args: argparse.Namespace, data: Any, rows: list[list[str]], header: list[str]) -> None:
    """`data` as JSON with `--json`, else `rows` as a table under `header`."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
        return
    print_table(rows, header)


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def progress_bar(total: int, label: str, *, least: int = 1 << 20) -> Callable[[int], None] | None:
    """A callback drawing `label [####....] 40%` on a terminal's stderr as `total` units pass
    (bytes, rows); None when stderr is no terminal or `total` is under `least`, too few to wait for."""
    if total < least or not sys.stderr.isatty():
        return None
    done = 0

    def update(amount: int) -> None:
        nonlocal done
        done += amount
        filled = int(30 * min(done, total) / total)
        print(
            f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {min(done, total) * 100 // total:3d}%",
            end="",
            file=sys.stderr,
        )
        if done >= total:
            print(file=sys.stderr)

    return update


def registry_from_args(args: argparse.Namespace) -> Registry:
    from maas.identity import sts_identity
    from maas.registry import ArtifactStore, DynamoDBStore, Registry

    # Changes are recorded as made by the credentials' own principal, asked of STS on the first one.
    return Registry(
        DynamoDBStore(args.table, client=aws_client("dynamodb", args.endpoint_url)),
        ArtifactStore(args.bucket, client=aws_client("s3", args.endpoint_url)),
        identify=lambda: sts_identity(aws_client("sts", args.endpoint_url)),
    )


def control_from_args(args: argparse.Namespace) -> ControlPlane:
    """The control plane over the registry the options name: every change a command makes."""
    from maas.control import ControlPlane

    return ControlPlane(registry_from_args(args))
