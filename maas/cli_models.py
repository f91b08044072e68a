"""`maas models ...`: the registry from the command line, against AWS or the local stack.

AWS clients use boto3's usual credentials and region; `--endpoint-url` (or
AWS_ENDPOINT_URL, which `maas dev` prints) points them at the local stack.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.cli_sagemaker import (
    add_endpoint_commands,
    add_sagemaker_arguments,
    add_triton_options,
    follow_alias,
    package,
    triton_options,
)
from maas.errors import InvalidInput

if TYPE_CHECKING:
    from maas.registry import Registry


def add_models_commands(commands: Any) -> None:
    models = commands.add_parser("models", help="register, list and promote model versions")
    add_registry_arguments(models)
    models.add_argument("--json", action="store_true", help="print JSON instead of tables")
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")

    _add_register(actions)

    actions.add_parser("list", help="list models").set_defaults(run=_list)

    show = actions.add_parser("show", help="a model's versions and aliases, or one version")
    show.add_argument("name")
    show.add_argument("version", nargs="?", type=int)
    show.set_defaults(run=_show)

    promote = actions.add_parser("promote", help="point an alias at one version")
    promote.add_argument("name")
    promote.add_argument("version", type=int)
    promote.add_argument("--alias", default="prod")
    promote.add_argument("--expected-revision", type=int, default=None)
    promote.set_defaults(run=_promote)

    canary = actions.add_parser("canary", help="split an alias between versions, e.g. 3=90 4=10")
    canary.add_argument("name")
    canary.add_argument("weights", nargs="+", metavar="VERSION=WEIGHT")
    canary.add_argument("--alias", default="prod")
    canary.add_argument("--expected-revision", type=int, default=None)
    canary.set_defaults(run=_canary)

    rollback = actions.add_parser("rollback", help="point an alias back at its previous target")
    rollback.add_argument("name")
    rollback.add_argument("--alias", default="prod")
    rollback.set_defaults(run=_rollback)

    retire = actions.add_parser("retire", help="stop serving a version no alias points at")
    retire.add_argument("name")
    retire.add_argument("version", type=int)
    retire.set_defaults(run=_retire)

    unalias = actions.add_parser("unalias", help="delete an alias (a model is deleted only without aliases)")
    unalias.add_argument("name")
    unalias.add_argument("alias")
    unalias.add_argument("--expected-revision", type=int, default=None)
    unalias.set_defaults(run=_unalias)

    history = actions.add_parser("history", help="every change of an alias, newest first")
    history.add_argument("name")
    history.add_argument("--alias", default="prod")
    history.set_defaults(run=_history)

    add_endpoint_commands(actions, _package, _endpoint)


def _add_register(actions: Any) -> None:
    register = actions.add_parser("register", help="upload an artifact and record it as the next version")
    register.add_argument("name")
    register.add_argument("artifact", type=Path)
    register.add_argument("--target", default="lambda", choices=["lambda", "sagemaker"])
    register.add_argument("--quantization", default=None)
    register.add_argument("--metric", action="append", default=[], metavar="KEY=NUMBER")
    register.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    register.add_argument("--commit", default=None, help="source commit the artifact was built from")
    register.add_argument(
        "--optimize", choices=["graph", "int8-dynamic", "int8-static"], help="optimize first (needs --eval)"
    )
    register.add_argument("--eval", dest="evaluation", type=Path, help=".npz evaluation file for --optimize")
    register.add_argument("--calibration", type=Path, help=".npz calibration inputs for int8-static")
    register.add_argument("--max-drop", type=float, default=1.0)
    add_triton_options(register)
    register.set_defaults(run=_register)


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the registry lives (and its models' SageMaker endpoints), for `models` and `release`."""
    parser.add_argument(
        "--endpoint-url", default=None, help="AWS endpoint (default: AWS_ENDPOINT_URL or AWS)"
    )
    parser.add_argument("--table", default=os.environ.get("MAAS_REGISTRY_TABLE", "maas-registry"))
    parser.add_argument("--bucket", default=os.environ.get("MAAS_ARTIFACT_BUCKET", "maas-artifacts"))
    add_sagemaker_arguments(parser)


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


def registry_from_args(args: argparse.Namespace) -> Registry:
    from maas.identity import sts_identity
    from maas.registry import ArtifactStore, DynamoDBStore, Registry

    # Changes are recorded as made by the credentials' own principal, asked of STS on the first one.
    return Registry(
        DynamoDBStore(args.table, client=aws_client("dynamodb", args.endpoint_url)),
        ArtifactStore(args.bucket, client=aws_client("s3", args.endpoint_url)),
        identify=lambda: sts_identity(aws_client("sts", args.endpoint_url)),
    )


def _pairs(values: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{what} '{value}' must look like KEY=VALUE")
        pairs[key] = item
    return pairs


def _emit(args: argparse.Namespace, data: Any, rows: list[list[str]], header: list[str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
        return
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def upload_progress(total: int) -> Any:
    if total < 1 << 20 or not sys.stderr.isatty():
        return None
    sent = 0

    def update(chunk: int) -> None:
        nonlocal sent
        sent += chunk
        filled = int(30 * sent / total)
        print(
            f"\rupload [{'#' * filled}{'.' * (30 - filled)}] {sent * 100 // total:3d}%",
            end="",
            file=sys.stderr,
        )
        if sent >= total:
            print(file=sys.stderr)

    return update


def _version_row(v: Any) -> list[str]:
    return [
        str(v.version),
        v.status,
        v.framework,
        v.target,
        str(v.size),
        v.sha256[:12],
        v.created_by,
        v.created_at,
        (v.source_commit or "-")[:12],
        v.labels.get("git.author", "-"),
    ]


VERSION_HEADER = [
    "VERSION",
    "STATUS",
    "FRAMEWORK",
    "TARGET",
    "SIZE",
    "SHA256",
    "BY",
    "CREATED",
    "COMMIT",
    "AUTHOR",
]


def _register(args: argparse.Namespace) -> int:
    if not args.artifact.is_file():
        raise InvalidInput(f"no artifact file at {args.artifact}")
    try:
        metrics = {k: float(v) for k, v in _pairs(args.metric, "metric").items()}
    except ValueError:
        raise InvalidInput("metric values must be numbers, e.g. --metric accuracy=0.97") from None
    registry = registry_from_args(args)
    if args.target == "sagemaker":
        triton_options(args)  # refuse bad Triton options before anything is uploaded
    with tempfile.TemporaryDirectory() as scratch:
        artifact, quantization = args.artifact, args.quantization
        if args.optimize:
            if args.evaluation is None:
                raise InvalidInput("--optimize needs --eval FILE to check the result's quality")
            from maas.optimize import optimize_model

            artifact = Path(scratch) / "model.onnx"
            report = optimize_model(
                args.artifact,
                artifact,
                mode=args.optimize,
                evaluation=args.evaluation,
                calibration=args.calibration,
                max_drop=args.max_drop,
            )
            print(report.table(), file=sys.stderr)
            metrics = {**report.as_metrics(), **metrics}
            quantization = quantization or args.optimize
        version = registry.register(
            args.name,
            artifact,
            target=args.target,
            quantization=quantization,
            metrics=metrics,
            labels=_pairs(args.label, "label"),
            source_commit=args.commit,
            progress=upload_progress(artifact.stat().st_size),
        )
    if version.target == "sagemaker":
        package(args, registry, version)
    _emit(args, version.model_dump(mode="json"), [_version_row(version)], VERSION_HEADER)
    return 0


def _list(args: argparse.Namespace) -> int:
    registry = registry_from_args(args)
    heads, token = [], None
    while True:
        page = registry.models(limit=100, token=token)
        heads.extend(page.items)
        token = page.next_token
        if token is None:
            break
    data = [{"name": h.name, "latest_version": h.latest_version, "created_at": h.created_at} for h in heads]
    _emit(
        args,
        data,
        [[h.name, str(h.latest_version), h.created_at] for h in heads],
        ["MODEL", "LATEST", "CREATED"],
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    registry = registry_from_args(args)
    if args.version is not None:
        version = registry.get(args.name, args.version)
        _emit(args, version.model_dump(mode="json"), [_version_row(version)], VERSION_HEADER)
        return 0
    versions = []
    token = None
    while True:
        page = registry.versions(args.name, limit=100, token=token)
        versions.extend(page.items)
        for what in page.unreadable:
            print(
                f"maas: warning: {what} of model '{args.name}' cannot be read; it is left out",
                file=sys.stderr,
            )
        token = page.next_token
        if token is None:
            break
    aliases = registry.aliases(args.name)
    if args.json:
        data = {
            "versions": [v.model_dump(mode="json") for v in versions],
            "aliases": [a.model_dump(mode="json") for a in aliases],
        }
        print(json.dumps(data, indent=2))
        return 0
    _emit(args, None, [_version_row(v) for v in versions], VERSION_HEADER)
    print()
    _emit(
        args,
        None,
        [[a.alias, _weights(a.weights), str(a.revision), a.updated_at] for a in aliases],
        ["ALIAS", "TARGET", "REVISION", "UPDATED"],
    )
    return 0


def _weights(weights: dict[int, int]) -> str:
    if not weights:
        return "-"  # a deleted alias
    if len(weights) == 1:
        return f"v{next(iter(weights))}"
    return " ".join(f"v{v}:{w}%" for v, w in sorted(weights.items()))


def _alias_out(args: argparse.Namespace, alias: Any) -> int:
    _emit(
        args,
        alias.model_dump(mode="json"),
        [[alias.alias, _weights(alias.weights), str(alias.revision)]],
        ["ALIAS", "TARGET", "REVISION"],
    )
    return 0


def _promote(args: argparse.Namespace) -> int:
    registry = registry_from_args(args)
    alias = registry.promote(args.name, args.alias, args.version, expected_revision=args.expected_revision)
    follow_alias(args, registry, alias)
    return _alias_out(args, alias)


def _canary(args: argparse.Namespace) -> int:
    try:
        weights = {int(k): int(v) for k, v in _pairs(args.weights, "weight").items()}
    except ValueError:
        raise InvalidInput("canary weights look like VERSION=PERCENT, e.g. 3=90 4=10") from None
    registry = registry_from_args(args)
    alias = registry.canary(args.name, args.alias, weights, expected_revision=args.expected_revision)
    follow_alias(args, registry, alias)
    return _alias_out(args, alias)


def _rollback(args: argparse.Namespace) -> int:
    registry = registry_from_args(args)
    alias = registry.rollback(args.name, args.alias)
    follow_alias(args, registry, alias)
    return _alias_out(args, alias)


def _unalias(args: argparse.Namespace) -> int:
    change = registry_from_args(args).delete_alias(
        args.name, args.alias, expected_revision=args.expected_revision
    )
    _emit(
        args,
        change.model_dump(mode="json"),
        [[change.alias, "deleted", _weights(change.previous or {}), str(change.revision)]],
        ["ALIAS", "ACTION", "PREVIOUS", "REVISION"],
    )
    return 0


def _retire(args: argparse.Namespace) -> int:
    version = registry_from_args(args).retire(args.name, args.version)
    _emit(args, version.model_dump(mode="json"), [_version_row(version)], VERSION_HEADER)
    return 0


def _history(args: argparse.Namespace) -> int:
    changes = registry_from_args(args).history(args.name, args.alias, limit=100).items
    rows = [
        [
            str(c.revision),
            c.action,
            _weights(c.weights),
            _weights(c.previous) if c.previous else "-",
            c.by,
            c.at,
        ]
        for c in changes
    ]
    _emit(
        args,
        [c.model_dump(mode="json") for c in changes],
        rows,
        ["REVISION", "ACTION", "TARGET", "PREVIOUS", "BY", "AT"],
    )
    return 0


def _package(args: argparse.Namespace) -> int:
    registry = registry_from_args(args)
    record = registry.get(args.name, args.version)
    package(args, registry, record)
    _emit(args, record.model_dump(mode="json"), [_version_row(record)], VERSION_HEADER)
    return 0


def _endpoint(args: argparse.Namespace) -> int:
    from maas.cli_sagemaker import deployer

    registry = registry_from_args(args)
    endpoints = deployer(args, registry)
    if args.sync:
        status = endpoints.status(args.name)
        endpoints.sync(registry.alias(args.name, status.alias))
    status = endpoints.status(args.name)
    rows = [
        [status.endpoint, status.status, status.alias, v.name, _weights({v.version or 0: int(v.weight)}),
         str(v.instances if v.instances is not None else "-"), status.config]
        for v in status.variants
    ]  # fmt: skip
    _emit(
        args,
        status.as_dict(),
        rows,
        ["ENDPOINT", "STATUS", "ALIAS", "VARIANT", "VERSION", "INSTANCES", "CONFIG"],
    )
    if status.failure:
        print(f"failure: {status.failure}", file=sys.stderr)
    return 0
