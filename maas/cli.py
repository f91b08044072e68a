"""The `maas` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from maas import __version__
from maas.errors import MaasError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maas", description="Models as a service on AWS serverless.")
    parser.add_argument("--version", action="version", version=f"maas {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser("dev", help="run the local stack with the demo models on 127.0.0.1")
    dev.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    dev.add_argument("--port", type=int, default=8080, help="port to listen on (default: %(default)s)")
    dev.add_argument(
        "--models",
        type=Path,
        default=Path(".maas/models"),
        help="model directory, <name>/<version>/model.onnx|tflite (default: %(default)s)",
    )
    dev.add_argument("--no-demo", action="store_true", help="do not add the demo models to --models")
    dev.add_argument("--handler", type=Path, default=None, help="the predict Lambda handler file to serve")
    dev.set_defaults(run=_dev)
    return parser


def _dev(args: argparse.Namespace) -> int:
    from maas.local.dev import PREDICT_HANDLER, run_dev

    return run_dev(args.host, args.port, args.models, args.handler or PREDICT_HANDLER, demo=not args.no_demo)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.run(args)
    except MaasError as error:
        print(f"maas: error: {error.message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
