"""The `maas` command: one module per command group, `common` for what they share."""

from maas.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
