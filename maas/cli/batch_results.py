"""`maas batch status|list|get`: what became of submitted files, read from S3 as the batch
side leaves it (maas.batch.processor): the input at `inputs/<model>/...`, its manifest at
`outputs/<model>/....manifest.json` with `status` and `reason`, its outputs and errors files.

A file is `pending` until a manifest of its latest upload is there, then `done` or `failed`.
On a versioned bucket (the stack's, maas dev's) the manifest's `input_version` says which
upload it describes; on an unversioned one, a manifest no older than the upload does.
A file run as parts says how many parts are done while it is pending, and `get` joins its
parts' outputs and errors into one file each (maas.batch.assemble).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from maas.cli.common import aws_client, emit, progress_bar
from maas.errors import InvalidInput, MaasError

if TYPE_CHECKING:
    from maas.cli.common import Verbs

PENDING, DONE, FAILED = "pending", "done", "failed"
HEADER = ["INPUT", "STATE", "VERSION", "ROWS", "FAILED", "SUBMITTED", "NOTE"]


@dataclass(frozen=True)
class Submission:
    """One submitted file: its input key, state, and the manifest of its latest upload (if any)."""

    bucket: str
    key: str
    state: str
    manifest_key: str
    manifest: dict[str, Any] | None
    submitted_at: str | None
    # A pending file run as parts: {"parts": n, "parts_done": k}.
    progress: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        found = {
            "bucket": self.bucket,
            "input": self.key,
            "state": self.state,
            "submitted_at": self.submitted_at,
            "manifest_key": self.manifest_key,
            "manifest": self.manifest,
        }
        if self.progress is not None:
            found["progress"] = self.progress
        return found

    def row(self) -> list[str]:
        manifest = self.manifest or {}
        if self.state == FAILED:
            note = _shortened(manifest.get("reason") or "")
        elif manifest.get("rows_failed"):
            note = f"see {manifest.get('errors')}"
        elif self.progress is not None:
            note = f"{self.progress['parts_done']} of {self.progress['parts']} parts done"
        else:
            note = "-"
        return [
            self.key,
            self.state,
            str(manifest.get("version") or "-"),
            str(manifest.get("rows_in", "-")),
            str(manifest.get("rows_failed", "-")),
            self.submitted_at or "-",
            note,
        ]


def add_result_commands(verbs: Verbs) -> None:
    status = verbs.add(
        "status",
        help="pending, done or failed (with the reason): what became of a submitted file",
        description="Where a submitted file stands, from its manifest under outputs/.",
    )
    _add_file_arguments(status)
    status.set_defaults(run=_status)

    listing = verbs.add("list", help="every submitted file under inputs/ with its state")
    listing.add_argument("--model", default=None, help="only this model's files (default: every model's)")
    listing.set_defaults(run=_list)

    get = verbs.add("get", help="download a processed file's outputs, errors and manifest")
    _add_file_arguments(get)
    get.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("."),
        help="directory to write them in, under the keys' own names: outputs/<model>/..., "
        "errors/<model>/... (default: here)",
    )
    get.set_defaults(run=_get)


def _add_file_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file_or_key",
        metavar="FILE_OR_KEY",
        help="the input's key (inputs/<model>/...) or s3:// URL, or the file given to "
        "`maas batch submit` with its --model (and --alias)",
    )
    parser.add_argument("--model", default=None, help="with a FILE: the model it was submitted to")
    parser.add_argument("--alias", default=None, help="with a FILE: the alias it was submitted with, if any")


def _status(args: argparse.Namespace) -> int:
    found = _submission_of_args(args)
    emit(args, found.as_dict(), [found.row()], HEADER)
    if not args.json and found.manifest is not None and found.state == FAILED:
        print(f"reason: {found.manifest.get('reason')}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from maas.batch.processor import INPUTS
    from maas.sources import check_name

    prefix = INPUTS + (f"{check_name('model name', args.model)}/" if args.model else "")
    s3 = aws_client("s3", args.endpoint_url)
    found = [
        submission(s3, args.bucket, item["Key"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if not item["Key"].endswith("/")  # a folder marker, no file
    ]
    emit(args, [item.as_dict() for item in found], [item.row() for item in found], HEADER)
    return 0


def _get(args: argparse.Namespace) -> int:
    found = _submission_of_args(args)
    if found.manifest is None:
        raise MaasError(
            f"s3://{found.bucket}/{found.key} has no result yet: it is pending "
            f"(`maas batch status {found.key}` tells when it is done)"
        )
    s3 = aws_client("s3", args.endpoint_url)
    written = [_write_manifest(args.output, found)]
    if found.state == FAILED:
        raise MaasError(
            f"s3://{found.bucket}/{found.key} was not processed: {found.manifest.get('reason')} "
            f"(its manifest is at {written[0]})"
        )
    if found.manifest.get("parts"):
        written.extend(_get_parts(s3, found.bucket, found.manifest, args.output))
    else:
        for what in ("output", "errors"):
            key = found.manifest.get(what)
            if key:
                written.append(_download(s3, found.bucket, key, _local_path(args.output, key)))
    sizes = [path.stat().st_size for path in written]
    emit(
        args,
        [{"path": str(path), "size": size} for path, size in zip(written, sizes, strict=True)],
        [[str(path), str(size)] for path, size in zip(written, sizes, strict=True)],
        ["FILE", "BYTES"],
    )
    return 0


def _get_parts(s3: Any, bucket: str, manifest: dict[str, Any], directory: Path) -> list[Path]:
    """A split file's results joined into one outputs file and one errors file, written where an
    unsplit file's would be."""
    import tempfile

    from maas.batch.assemble import join_errors, join_outputs, joined_keys

    output_key, errors_key = joined_keys(manifest)
    written = []
    with tempfile.TemporaryDirectory(prefix="maas-get-") as scratch:
        for what, key, join in (("output", output_key, join_outputs), ("errors", errors_key, join_errors)):
            keys = [part[what] for part in manifest["parts"] if part.get(what)]
            if not keys:
                continue
            target = _local_path(directory, key)
            local = [
                _download(
                    s3, bucket, part, Path(scratch) / what / f"{number:05d}{PurePosixPath(part).suffix}"
                )
                for number, part in enumerate(keys)
            ]
            join(local, target)
            print(f"wrote {target} from {len(keys)} parts", file=sys.stderr)
            written.append(target)
    return written


def input_key(file_or_key: str, model: str | None, alias: str | None) -> tuple[str | None, str]:
    """(bucket, key) of a submission named by its key, its s3:// URL, or its file and model
    (the key `maas batch submit` uploads it to); the bucket is None unless the URL names it."""
    from maas.batch.processor import INPUTS
    from maas.sources import check_name

    if file_or_key.startswith("s3://"):
        bucket, _, key = file_or_key[len("s3://") :].partition("/")
        return bucket, _checked_key(key)
    if file_or_key.startswith(INPUTS):
        return None, _checked_key(file_or_key)
    if model is None:
        raise InvalidInput(
            f"'{file_or_key}' is no key under {INPUTS}: give the key (e.g. {INPUTS}<model>/"
            f"{Path(file_or_key).name}), or the model it was submitted to with --model"
        )
    check_name("model name", model)
    folder = f"{model}/{check_name('alias', alias)}/" if alias else f"{model}/"
    return None, INPUTS + folder + Path(file_or_key).name


def _checked_key(key: str) -> str:
    from maas.batch.processor import INPUTS

    parts = key.split("/")
    if not key.startswith(INPUTS) or len(parts) < 3 or not all(parts) or ".." in parts:
        raise InvalidInput(
            f"'{key}' is not a batch input key: they look like {INPUTS}<model>/[<alias>/]<file>"
        )
    return key


def manifest_key_of(key: str) -> str:
    """Where the processor writes the manifest of the input at `key`: whether or not its first
    folder names an alias, `outputs/` and the same path (`.npy` in, `.npz` out)."""
    from maas.batch.processor import INPUTS, output_key

    model, _, relative = key[len(INPUTS) :].partition("/")
    return output_key(model, None, relative) + ".manifest.json"


def submission(s3: Any, bucket: str, key: str) -> Submission:
    """What became of the latest upload at `s3://bucket/key`; InvalidInput if nothing was
    submitted there."""
    manifest_key = manifest_key_of(key)
    uploaded = _head(s3, bucket, key)
    manifest, written = _manifest(s3, bucket, manifest_key)
    if uploaded is None and manifest is None:
        raise InvalidInput(f"nothing was submitted at s3://{bucket}/{key}, and it has no manifest")
    if manifest is not None and uploaded is not None and not _describes(manifest, written, uploaded):
        manifest = None  # an earlier upload's: this one has not run yet
    submitted = uploaded["LastModified"].isoformat(timespec="seconds") if uploaded else None
    progress = None
    if manifest is None and uploaded is not None:
        from maas.batch.assemble import split_progress

        progress = split_progress(s3, bucket, manifest_key, uploaded.get("VersionId"))
    return Submission(bucket, key, _state(manifest), manifest_key, manifest, submitted, progress)


def _state(manifest: dict[str, Any] | None) -> str:
    if manifest is None:
        return PENDING
    return FAILED if manifest.get("status") == "failed" else DONE


def _describes(manifest: dict[str, Any], written: Any, uploaded: dict[str, Any]) -> bool:
    """Whether `manifest` (written at `written`) is of the upload `uploaded` (its HEAD)."""
    if uploaded.get("VersionId") and manifest.get("input_version"):
        return bool(manifest["input_version"] == uploaded["VersionId"])
    # S3 keeps whole seconds: a manifest of the same second counts as this upload's.
    return bool(written.timestamp() >= uploaded["LastModified"].timestamp() - 1)


def _submission_of_args(args: argparse.Namespace) -> Submission:
    bucket, key = input_key(args.file_or_key, args.model, args.alias)
    return submission(aws_client("s3", args.endpoint_url), bucket or args.bucket, key)


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        head: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
        return None
    return head


def _manifest(s3: Any, bucket: str, key: str) -> tuple[dict[str, Any] | None, Any]:
    """The manifest at `key` and when it was written, or (None, None)."""
    from botocore.exceptions import ClientError

    try:
        found = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
        return None, None
    try:
        manifest = json.loads(found["Body"].read())
    except ValueError:
        raise MaasError(f"the manifest at s3://{bucket}/{key} is not JSON") from None
    if not isinstance(manifest, dict):
        raise MaasError(f"the manifest at s3://{bucket}/{key} is not a JSON object")
    return manifest, found["LastModified"]


def _local_path(directory: Path, key: str) -> Path:
    """Where `key` goes under `directory`: the same relative path, never outside it."""
    parts = PurePosixPath(key).parts
    if not parts or PurePosixPath(key).is_absolute() or ".." in parts:
        raise MaasError(f"the manifest names '{key}', which is no file under {directory}; not written")
    return directory.joinpath(*parts)


def _write_manifest(directory: Path, found: Submission) -> Path:
    path = _local_path(directory, found.manifest_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found.manifest, indent=2) + "\n")
    return path


def _download(s3: Any, bucket: str, key: str, path: Path) -> Path:
    size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    path.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, key, str(path), Callback=progress_bar(size, "download"))
    print(f"wrote {path} from s3://{bucket}/{key}", file=sys.stderr)
    return path


def _shortened(text: str, most: int = 70) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."
