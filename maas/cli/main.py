"""The `maas` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from maas import __version__
from maas.cli.common import EXIT_CODES, FAILED, UNEXPECTED, HelpFormatter, exit_codes
from maas.errors import MaasError


def _add_dev(commands: Any) -> None:
    dev = commands.add_parser(
        "dev",
        help="run the local stack with the demo models on 127.0.0.1",
        epilog=exit_codes("0  stopped with Ctrl-C", UNEXPECTED, FAILED),
        formatter_class=HelpFormatter,
    )
    dev.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    dev.add_argument(
        "--port",
        type=int,
        default=None,
        help="port to listen on (default: 8080); with --deploy, the deployed API's (default: a free one)",
    )
    dev.add_argument(
        "--models",
        type=Path,
        default=Path(".maas/models"),
        help="model directory, <name>/<version>/model.onnx|tflite (default: %(default)s)",
    )
    dev.add_argument("--no-demo", action="store_true", help="do not add the demo models to --models")
    dev.add_argument("--functions", type=Path, default=None, help="the Lambda functions directory to serve")
    dev.add_argument(
        "--aws-port", type=int, default=4566, help="port of the embedded AWS endpoint (default: %(default)s)"
    )
    dev.add_argument(
        "--alias-ttl",
        type=float,
        default=5.0,
        help="seconds an alias is cached by the predict function (default: %(default)s)",
    )
    dev.add_argument(
        "--auth",
        choices=["none", "iam"],
        default="none",
        help="iam: refuse requests without a SigV4 signature, as the deployed API does (default: %(default)s)",
    )
    dev.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="warm worker processes per function, each serving one request at a time "
        "(default: one per CPU, at least 2 and at most 8)",
    )
    dev.add_argument(
        "--state",
        type=Path,
        default=Path(".maas/state"),
        help="where the registry, batch records and bucket are kept across restarts (default: %(default)s)",
    )
    dev.add_argument(
        "--fresh",
        action="store_true",
        help="start with an empty registry and bucket (the kept state is dropped)",
    )
    dev.add_argument(
        "--deploy",
        action="store_true",
        help="cdk deploy the project's CDK app to the embedded AWS instead, serve it, destroy it at Ctrl-C",
    )
    dev.add_argument(
        "--config", type=Path, default=None, help="with --deploy: the maas.yaml (default: the project's)"
    )
    dev.set_defaults(run=_dev)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maas",
        description="Models as a service on AWS serverless.",
        epilog=exit_codes("0  done", UNEXPECTED, FAILED, "(each command's --help lists its own)"),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"maas {__version__}", help="print maas's version"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_dev(commands)

    init = _command(
        commands,
        "init",
        help="make a project to deploy from: maas.yaml, cdk.json, package.json, .gitignore, models/",
        epilog=exit_codes(
            "0  written",
            UNEXPECTED,
            "2  a file exists (each is named; --force replaces them), or it cannot be written",
        ),
    )
    init.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=Path("."),
        help="where to make it, made if missing (default: the current directory)",
    )
    init.add_argument("--force", action="store_true", help="replace the files that exist")
    init.set_defaults(run=_init)

    deploy = _command(
        commands,
        "deploy",
        help="cdk deploy the stack maas.yaml describes (the project's CDK CLI, else maas's own)",
        epilog=exit_codes(
            "0  deployed",
            "2  maas.yaml is not valid, or no cdk.json, CDK CLI or Node.js here (the reason is printed)",
            "else  cdk's own",
        ),
    )
    deploy.add_argument(
        "--config", type=Path, default=Path("maas.yaml"), help="the stack's maas.yaml (default: %(default)s)"
    )
    deploy.add_argument(
        "cdk_args", nargs=argparse.REMAINDER, help="passed on to cdk deploy, after -- (-- --hotswap)"
    )
    deploy.set_defaults(run=_deploy)

    optimize = _command(
        commands,
        "optimize",
        help="quantize or prune an ONNX model, refusing it if quality drops or it grows",
        epilog=exit_codes("0  written", UNEXPECTED, FAILED),
    )
    optimize.add_argument("model", type=Path, help="the ONNX model (.onnx)")
    optimize.add_argument(
        "--output",
        "-o",
        type=Path,
        required=True,
        help="where to write the result (.onnx, or .ort with --ort)",
    )
    optimize.add_argument(
        "--mode",
        default=None,
        choices=["graph", "int8-dynamic", "int8-static", "prune"],
        help="graph optimizations only, or int8 weights with dynamic or calibrated activations, or "
        "pruning only (default: int8-dynamic; prune with --prune)",
    )
    optimize.add_argument(
        "--prune",
        type=float,
        metavar="RATIO",
        help="first remove this share (0-1) of each hidden dense layer's units, those of smallest weights",
    )
    optimize.add_argument(
        "--eval", dest="evaluation", type=Path, required=True, help=".npz: input arrays and labels or targets"
    )
    optimize.add_argument("--calibration", type=Path, help=".npz of input arrays (int8-static)")
    optimize.add_argument(
        "--max-drop",
        type=float,
        default=1.0,
        help="allowed loss: accuracy points, or %% RMSE (default: %(default)s)",
    )
    optimize.add_argument("--ort", action="store_true", help="write ONNX Runtime's ORT format")
    optimize.add_argument(
        "--allow-larger", action="store_true", help="write the result even if it is bigger than the model"
    )
    optimize.set_defaults(run=_optimize)

    exporter = _command(commands, "exporter", help="CloudWatch metrics for Prometheus")
    exporter_actions = exporter.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = exporter_actions.add_parser(
        "serve",
        help="serve /metrics for a Prometheus next to it",
        epilog=exit_codes("0  stopped with Ctrl-C or SIGTERM", UNEXPECTED, FAILED),
        formatter_class=HelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=9106, help="port to listen on (default: %(default)s)")
    serve.add_argument("--namespace", action="append", help="CloudWatch namespace (default: MaaS)")
    serve.add_argument(
        "--stat",
        action="append",
        help="statistic: Sum, Average, Maximum, p99... (default: Sum, Average, Maximum)",
    )
    serve.add_argument("--period", type=int, default=60, help="seconds per datapoint (default: %(default)s)")
    serve.add_argument(
        "--delay", type=int, default=60, help="seconds CloudWatch lags behind (default: %(default)s)"
    )
    serve.add_argument(
        "--interval", type=float, default=60, help="read CloudWatch at most this often (default: %(default)s)"
    )
    serve.add_argument(
        "--endpoint-url",
        default=None,
        help="CloudWatch endpoint (default: AWS_ENDPOINT_URL, else AWS itself)",
    )
    serve.set_defaults(run=_exporter_serve)

    openapi = _command(commands, "openapi", help="write the OpenAPI document of the HTTP API")
    openapi.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=Path("openapi.json"),
        help="where to write it (default: %(default)s)",
    )
    openapi.set_defaults(run=_openapi)

    from maas.cli.models import add_models_commands

    add_models_commands(commands)
    from maas.cli.release import add_release_command

    add_release_command(commands)

    from maas.cli.batch import add_batch_commands

    add_batch_commands(commands)
    from maas.cli.predict import add_predict_command

    add_predict_command(commands)
    _add_model_making(commands)
    return parser


def _add_model_making(commands: Any) -> None:
    """`maas convert` and `maas distill`: from a trained or a large model to a served, small one."""
    from maas.cli.convert import add_convert_command
    from maas.cli.distill import add_distill_command

    add_convert_command(commands)
    add_distill_command(commands)


def _command(
    commands: Any, name: str, *, epilog: str = EXIT_CODES, **options: Any
) -> argparse.ArgumentParser:
    """A command whose --help ends with its exit codes."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, epilog=epilog, formatter_class=HelpFormatter, **options
    )
    return parser


def _dev(args: argparse.Namespace) -> int:
    from maas.local.dev import FUNCTIONS, run_dev

    if args.deploy:
        from maas.local.deploy import run_deployed
        from maas.project import project_for_dev

        project = project_for_dev()
        return run_deployed(
            project, args.config or project / "maas.yaml", aws_port=args.aws_port, api_port=args.port
        )

    return run_dev(
        args.host,
        8080 if args.port is None else args.port,
        args.models,
        functions=args.functions or FUNCTIONS,
        demo=not args.no_demo,
        aws_port=args.aws_port,
        alias_ttl=args.alias_ttl,
        auth=args.auth,
        workers=args.workers,
        state_dir=args.state,
        fresh=args.fresh,
    )


def _positive_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _init(args: argparse.Namespace) -> int:
    from maas.project import init_project, next_steps

    print(next_steps(init_project(args.directory, force=args.force)))
    return 0


def _optimize(args: argparse.Namespace) -> int:
    from maas.optimize import optimize_model

    mode = args.mode or ("prune" if args.prune is not None else "int8-dynamic")
    report = optimize_model(
        args.model,
        args.output,
        mode=mode,
        prune=args.prune,
        evaluation=args.evaluation,
        calibration=args.calibration,
        max_drop=args.max_drop,
        ort_format=args.ort,
        allow_larger=args.allow_larger,
    )
    print(report.summary())
    print(f"wrote {args.output}: {report.size_change()}")
    return 0


def _exporter_serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from prometheus_client import start_http_server
    from prometheus_client.core import CollectorRegistry

    from maas.cli.common import aws_client
    from maas.metrics.exporter import CloudWatchCollector

    registry = CollectorRegistry()
    registry.register(
        CloudWatchCollector(
            aws_client("cloudwatch", args.endpoint_url),
            namespaces=tuple(args.namespace or ["MaaS"]),
            stats=tuple(args.stat or ["Sum", "Average", "Maximum"]),
            period=args.period,
            delay=args.delay,
            interval=args.interval,
        )
    )
    server, thread = start_http_server(args.port, addr=args.host, registry=registry)
    print(f"maas exporter: serving http://{args.host}:{args.port}/metrics", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    thread.join(timeout=5)
    print("maas exporter: stopped", flush=True)
    return 0


def _deploy(args: argparse.Namespace) -> int:
    import os
    import subprocess

    from maas.config import load_config
    from maas.project import cdk_cli

    load_config(args.config)  # a bad file is reported here, in maas's words, before CDK starts
    command = [
        *cdk_cli(Path.cwd()),
        "deploy",
        "--no-notices",
        "-c",
        f"config={args.config.resolve()}",
    ]
    env = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true"}
    # argparse keeps the `--` that lets cdk's options through; cdk would read what follows as stack names.
    passed = args.cdk_args[1:] if args.cdk_args[:1] == ["--"] else args.cdk_args
    return subprocess.call([*command, *passed], env=env)


def _openapi(args: argparse.Namespace) -> int:
    import json

    from maas.openapi import build_document

    args.path.write_text(json.dumps(build_document(), indent=2) + "\n")
    print(f"wrote {args.path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Where boto3 found credentials and endpoints, and moto's own request log (maas dev's
        # embedded AWS), are how, not what: for --verbose.
        for library in ("botocore", "boto3", "urllib3", "s3transfer", "moto", "werkzeug"):
            logging.getLogger(library).setLevel(logging.WARNING)
    try:
        code: int = args.run(args)
    except MaasError as error:
        print(f"maas: error: {error.message}", file=sys.stderr)
        return 2
    except Exception as error:
        # AWS access problems (no region, no credentials, access denied) are the user's to fix: no trace.
        if type(error).__module__.startswith("botocore"):
            print(f"maas: error: AWS: {error}", file=sys.stderr)
            return 2
        raise
    return code
