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

from maas.cli.common import (
    EXIT_CODES,
    HelpFormatter,
    Verbs,
    add_json_option,
    control_from_args,
    default,
    emit,
    progress_bar,
    registry_from_args,
    shared_options,
)
from maas.cli.convert import add_conversion_arguments, convert_for_register
from maas.cli.download import add_download_command
from maas.cli.sagemaker import (
    add_endpoint_commands,
    add_sagemaker_arguments,
    add_triton_options,
    add_wait_option,
    follow_target,
    say_packed,
    show_targets,
    triton_options,
)
from maas.errors import ConflictError, InvalidInput

if TYPE_CHECKING:
    pass


def add_models_commands(commands: Any) -> None:
    models = commands.add_parser(
        "models",
        help="register, list, promote, download and delete model versions",
        epilog=EXIT_CODES,
        formatter_class=HelpFormatter,
    )
    add_registry_arguments(models)
    add_json_option(models)
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    verbs = Verbs(actions, shared_options(_add_shared))

    _add_register(verbs)

    verbs.add("list", help="list models").set_defaults(run=_list)

    show = verbs.add("show", help="a model's versions and aliases, or one version")
    show.add_argument("name", help="the model")
    show.add_argument("version", nargs="?", type=int, help="one version's record (default: all versions)")
    show.set_defaults(run=_show)

    promote = verbs.add("promote", help="point an alias at one version")
    promote.add_argument("name", help="the model")
    promote.add_argument("version", type=int, help="the version the alias will serve")
    promote.add_argument("--alias", default="prod", help="the alias to point (default: %(default)s)")
    _add_expected_revision(promote)
    add_wait_option(promote)
    promote.set_defaults(run=_promote)

    canary = verbs.add("canary", help="split an alias between versions, e.g. 3=90 4=10")
    canary.add_argument("name", help="the model")
    canary.add_argument(
        "weights",
        nargs="+",
        metavar="VERSION=WEIGHT",
        help="percent of requests per version, adding up to 100",
    )
    canary.add_argument("--alias", default="prod", help="the alias to split (default: %(default)s)")
    _add_expected_revision(canary)
    add_wait_option(canary)
    canary.set_defaults(run=_canary)

    rollback = verbs.add("rollback", help="point an alias back at its previous target")
    rollback.add_argument("name", help="the model")
    rollback.add_argument("--alias", default="prod", help="the alias to roll back (default: %(default)s)")
    add_wait_option(rollback)
    rollback.set_defaults(run=_rollback)

    retire = verbs.add("retire", help="stop serving a version no alias points at")
    retire.add_argument("name", help="the model")
    retire.add_argument("version", type=int, help="the version to retire")
    retire.set_defaults(run=_retire)

    unalias = verbs.add("unalias", help="delete an alias (a model is deleted only without aliases)")
    unalias.add_argument("name", help="the model")
    unalias.add_argument("alias", help="the alias to delete; its history stays")
    _add_expected_revision(unalias)
    unalias.set_defaults(run=_unalias)

    history = verbs.add("history", help="every change of an alias, newest first")
    history.add_argument("name", help="the model")
    history.add_argument("--alias", default="prod", help="the alias (default: %(default)s)")
    history.set_defaults(run=_history)

    add_download_command(verbs)

    delete = verbs.add(
        "delete",
        help="delete a model no alias points into: its versions and alias history (artifacts stay in S3)",
    )
    delete.add_argument("name", help="the model")
    delete.set_defaults(run=_delete)
    add_endpoint_commands(verbs, _package, _endpoint)


def _add_shared(parser: argparse.ArgumentParser, on_verb: bool) -> None:
    add_registry_arguments(parser, on_verb)
    add_json_option(parser, on_verb)


def _add_expected_revision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--expected-revision",
        type=int,
        default=None,
        help="refuse the change unless the alias is still at this revision (as you read it)",
    )


def _add_register(verbs: Verbs) -> None:
    register = verbs.add("register", help="upload an artifact and record it as the next version")
    register.add_argument("name", help="the model (created by its first version)")
    register.add_argument(
        "artifact", type=Path, nargs="?", help="the model file: .onnx, .ort or .tflite (or --convert SOURCE)"
    )
    register.add_argument(
        "--convert",
        metavar="SOURCE",
        help="convert this trained model first (see maas convert), verified, its framework recorded as labels",
    )
    register.add_argument(
        "--to",
        choices=["onnx", "tflite"],
        help="with --convert: the format (default: onnx; tflite for Keras)",
    )
    add_conversion_arguments(register)
    register.add_argument(
        "--target",
        default="lambda",
        choices=["lambda", "sagemaker"],
        help="serve it from Lambda or from a SageMaker GPU endpoint (default: %(default)s)",
    )
    register.add_argument("--quantization", default=None, help="how it was quantized, recorded as given")
    register.add_argument(
        "--metric", action="append", default=[], metavar="KEY=NUMBER", help="a quality figure (repeatable)"
    )
    register.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="a label (repeatable)"
    )
    register.add_argument("--commit", default=None, help="source commit the artifact was built from")
    register.add_argument(
        "--optimize", choices=["graph", "int8-dynamic", "int8-static"], help="optimize first (needs --eval)"
    )
    register.add_argument("--eval", dest="evaluation", type=Path, help=".npz evaluation file for --optimize")
    register.add_argument("--calibration", type=Path, help=".npz calibration inputs for int8-static")
    register.add_argument(
        "--max-drop",
        type=float,
        default=1.0,
        help="with --optimize: allowed loss, accuracy points or %% RMSE (default: %(default)s)",
    )
    add_triton_options(register)
    register.set_defaults(run=_register)


def add_registry_arguments(parser: argparse.ArgumentParser, on_verb: bool = False) -> None:
    """Where the registry lives (and its models' SageMaker endpoints), for `models` and `release`;
    `on_verb`: for a verb of `models`, after which they may also come (see shared_options)."""
    parser.add_argument(
        "--endpoint-url",
        default=default(None, on_verb),
        help="AWS endpoint (default: AWS_ENDPOINT_URL, else AWS itself)",
    )
    parser.add_argument(
        "--table",
        default=default(os.environ.get("MAAS_REGISTRY_TABLE", "maas-registry"), on_verb),
        help="the registry's DynamoDB table (default: MAAS_REGISTRY_TABLE, else maas-registry)",
    )
    parser.add_argument(
        "--bucket",
        default=default(os.environ.get("MAAS_ARTIFACT_BUCKET", "maas-artifacts"), on_verb),
        help="the artifact bucket (default: MAAS_ARTIFACT_BUCKET, else maas-artifacts)",
    )
    add_sagemaker_arguments(parser, on_verb)


def _pairs(values: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{what} '{value}' must look like KEY=VALUE")
        pairs[key] = item
    return pairs


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
    if (args.artifact is None) == (args.convert is None):
        raise InvalidInput("give the artifact to register, or --convert SOURCE, not both")
    if args.artifact is not None and not args.artifact.is_file():
        raise InvalidInput(f"no artifact file at {args.artifact}")
    try:
        metrics = {k: float(v) for k, v in _pairs(args.metric, "metric").items()}
    except ValueError:
        raise InvalidInput("metric values must be numbers, e.g. --metric accuracy=0.97") from None
    control = control_from_args(args)
    # Bad Triton options are refused before anything is uploaded.
    triton = triton_options(args) if args.target == "sagemaker" else None
    labels = _pairs(args.label, "label")
    with tempfile.TemporaryDirectory() as scratch:
        artifact, quantization = args.artifact, args.quantization
        if args.convert is not None:
            artifact, converted = convert_for_register(args, Path(scratch))
            labels = {**converted, **labels}
        if args.optimize:
            if args.evaluation is None:
                raise InvalidInput("--optimize needs --eval FILE to check the result's quality")
            from maas.optimize import optimize_model

            optimized = Path(scratch) / "optimized.onnx"
            report = optimize_model(
                artifact,
                optimized,
                mode=args.optimize,
                evaluation=args.evaluation,
                calibration=args.calibration,
                max_drop=args.max_drop,
            )
            print(report.table(), file=sys.stderr)
            artifact = optimized
            metrics = {**report.as_metrics(), **metrics}
            quantization = quantization or args.optimize
        version = control.register(
            args.name,
            artifact,
            target=args.target,
            triton=triton,
            quantization=quantization,
            metrics=metrics,
            labels=labels,
            source_commit=args.commit,
            progress=progress_bar(artifact.stat().st_size, "upload"),
        )
    if version.target == "sagemaker":
        say_packed(control, version)
    emit(args, version.model_dump(mode="json"), [_version_row(version)], VERSION_HEADER)
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
    emit(
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
        emit(args, version.model_dump(mode="json"), [_version_row(version)], VERSION_HEADER)
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
        data: dict[str, object] = {
            "versions": [v.model_dump(mode="json") for v in versions],
            "aliases": [a.model_dump(mode="json") for a in aliases],
        }
        targets = show_targets(args, registry, aliases)
        if targets:
            data["targets"] = targets
        print(json.dumps(data, indent=2))
        return 0
    emit(args, None, [_version_row(v) for v in versions], VERSION_HEADER)
    print()
    emit(
        args,
        None,
        [[a.alias, _weights(a.weights), str(a.revision), a.updated_at] for a in aliases],
        ["ALIAS", "TARGET", "REVISION", "UPDATED"],
    )
    show_targets(args, registry, aliases)
    return 0


def _weights(weights: dict[int, int]) -> str:
    if not weights:
        return "-"  # a deleted alias
    if len(weights) == 1:
        return f"v{next(iter(weights))}"
    return " ".join(f"v{v}:{w}%" for v, w in sorted(weights.items()))


def _alias_out(args: argparse.Namespace, alias: Any) -> int:
    emit(
        args,
        alias.model_dump(mode="json"),
        [[alias.alias, _weights(alias.weights), str(alias.revision)]],
        ["ALIAS", "TARGET", "REVISION"],
    )
    return 0


def _promote(args: argparse.Namespace) -> int:
    control = control_from_args(args)
    alias = control.promote(args.name, args.alias, args.version, expected_revision=args.expected_revision)
    _alias_out(args, alias)
    return follow_target(args, control, alias)


def _canary(args: argparse.Namespace) -> int:
    try:
        weights = {int(k): int(v) for k, v in _pairs(args.weights, "weight").items()}
    except ValueError:
        raise InvalidInput("canary weights look like VERSION=PERCENT, e.g. 3=90 4=10") from None
    control = control_from_args(args)
    alias = control.canary(args.name, args.alias, weights, expected_revision=args.expected_revision)
    _alias_out(args, alias)
    return follow_target(args, control, alias)


def _rollback(args: argparse.Namespace) -> int:
    control = control_from_args(args)
    alias = control.rollback(args.name, args.alias)
    _alias_out(args, alias)
    return follow_target(args, control, alias)


def _unalias(args: argparse.Namespace) -> int:
    change = control_from_args(args).delete_alias(
        args.name, args.alias, expected_revision=args.expected_revision
    )
    emit(
        args,
        change.model_dump(mode="json"),
        [[change.alias, "deleted", _weights(change.previous or {}), str(change.revision)]],
        ["ALIAS", "ACTION", "PREVIOUS", "REVISION"],
    )
    return 0


def _retire(args: argparse.Namespace) -> int:
    version = control_from_args(args).retire(args.name, args.version)
    emit(args, version.model_dump(mode="json"), [_version_row(version)], VERSION_HEADER)
    return 0


def _delete(args: argparse.Namespace) -> int:
    control = control_from_args(args)
    aliases = control.registry.aliases(args.name)
    if aliases:
        commands = ", ".join(f"`maas models unalias {args.name} {a.alias}`" for a in aliases)
        raise ConflictError(
            f"model '{args.name}' still has alias(es) {', '.join(a.alias for a in aliases)} and cannot be "
            f"deleted: delete them first with {commands}"
        )
    control.delete(args.name)
    emit(args, {"name": args.name, "deleted": True}, [[args.name, "deleted"]], ["MODEL", "ACTION"])
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
    emit(
        args,
        [c.model_dump(mode="json") for c in changes],
        rows,
        ["REVISION", "ACTION", "TARGET", "PREVIOUS", "BY", "AT"],
    )
    return 0


def _package(args: argparse.Namespace) -> int:
    control = control_from_args(args)
    record = control.registry.get(args.name, args.version)
    control.package(record, triton_options(args))
    say_packed(control, record)
    emit(args, record.model_dump(mode="json"), [_version_row(record)], VERSION_HEADER)
    return 0


def _endpoint(args: argparse.Namespace) -> int:
    from maas.cli.sagemaker import endpoint_status

    return endpoint_status(args, control_from_args(args), _weights)
