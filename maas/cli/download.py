"""`maas models download`: a version's artifact as a local file, verified against its sha256."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from maas.cli.common import emit
from maas.errors import InvalidInput

if TYPE_CHECKING:
    from maas.cli.common import Verbs
    from maas.registry.models import ModelVersion


def add_download_command(verbs: Verbs) -> None:
    download = verbs.add("download", help="write a version's artifact to a file, verified against its sha256")
    download.add_argument("name", help="the model")
    download.add_argument("version", type=int, help="the version")
    download.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="the file to write, or a directory to write it in (default: <name>-v<version>.<suffix> here)",
    )
    download.set_defaults(run=_download)


def _download(args: argparse.Namespace) -> int:
    from maas.cli.common import registry_from_args

    registry = registry_from_args(args)
    record = registry.get(args.name, args.version)
    target = _target(args.output, record)
    if not target.parent.is_dir():
        raise InvalidInput(f"there is no directory {target.parent} to write {target.name} in")
    print(f"downloading {record.name} v{record.version} ({record.size} bytes)", file=sys.stderr)
    # Fetched beside the target and renamed: a failed or refused download leaves no partial file.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".maas-download-") as scratch:
        fetched = registry.artifacts.fetch(record.artifact_key, record.sha256, Path(scratch))
        fetched.replace(target)
    emit(
        args,
        {
            "name": record.name,
            "version": record.version,
            "path": str(target),
            "sha256": record.sha256,
            "size": record.size,
        },
        [[str(target), str(record.size), record.sha256[:12], "verified"]],
        ["PATH", "SIZE", "SHA256", "CHECK"],
    )
    return 0


def _target(output: Path | None, record: ModelVersion) -> Path:
    name = f"{record.name}-v{record.version}{PurePosixPath(record.artifact_key).suffix}"
    if output is None:
        return Path(name)
    return output / name if output.is_dir() else output
