"""`maas batch submit`: upload a file of inputs and wait for its predictions."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from maas.errors import InvalidInput, MaasError


def add_batch_commands(commands: Any) -> None:
    batch = commands.add_parser("batch", help="batch inference on files in S3")
    batch.add_argument("--endpoint-url", default=None, help="AWS endpoint (default: AWS_ENDPOINT_URL or AWS)")
    batch.add_argument("--bucket", default=os.environ.get("MAAS_ARTIFACT_BUCKET", "maas-artifacts"))
    actions = batch.add_subparsers(dest="action", required=True, metavar="ACTION")
    submit = actions.add_parser(
        "submit",
        help="upload FILE under inputs/<model>/ and wait for the result",
        description="Upload FILE under inputs/<model>/[<alias>/] and wait for its manifest.",
        epilog="exit codes: 0 every row predicted, 1 some rows failed (see the errors file), "
        "2 the file was not processed (the reason is printed) or no result came in time",
    )
    submit.add_argument("file", type=Path, help=".jsonl, .csv or .npy")
    submit.add_argument("--model", required=True)
    submit.add_argument(
        "--alias", default=None, help="alias or version to run (default: the model's default)"
    )
    submit.add_argument("--timeout", type=float, default=300, help="seconds to wait (default: %(default)s)")
    submit.add_argument("--no-wait", action="store_true")
    submit.set_defaults(run=_submit)


def _submit(args: argparse.Namespace) -> int:
    from maas.batch.formats import format_of
    from maas.batch.processor import FAILED, output_key
    from maas.cli_models import aws_client, upload_progress
    from maas.sources import check_name

    if not args.file.is_file():
        raise InvalidInput(f"no file at {args.file}")
    format_of(args.file.name)
    check_name("model name", args.model)
    if args.alias is not None:
        check_name("alias", args.alias)
    s3 = aws_client("s3", args.endpoint_url)
    prefix = f"inputs/{args.model}/{args.alias}/" if args.alias else f"inputs/{args.model}/"
    key = prefix + args.file.name
    manifest_key = output_key(args.model, args.alias, args.file.name) + ".manifest.json"
    started = time.time()
    s3.upload_file(str(args.file), args.bucket, key, Callback=upload_progress(args.file.stat().st_size))
    print(f"uploaded s3://{args.bucket}/{key}", file=sys.stderr)
    if args.no_wait:
        return 0
    # On a versioned bucket (the stack's, maas dev's) the manifest names the input version
    # it ran, which tells this upload's result from one written a moment before.
    uploaded_version = s3.head_object(Bucket=args.bucket, Key=key).get("VersionId")
    while time.time() - started < args.timeout:
        manifest = _manifest_of_upload(s3, args.bucket, manifest_key, uploaded_version, started)
        if manifest is None:
            time.sleep(0.5)  # not there yet
            continue
        print(json.dumps(manifest, indent=2))
        if manifest.get("status") == FAILED:
            raise MaasError(f"s3://{args.bucket}/{key} was not processed: {manifest['reason']}")
        if args.alias is not None and manifest.get("alias") != args.alias:
            # The processor took the unknown name for an ordinary folder and ran the default.
            raise MaasError(
                f"'{args.alias}' is no alias or version of model '{args.model}': the file ran as a plain "
                f"folder with version {manifest['version']} (see the manifest above)"
            )
        return 0 if manifest["rows_failed"] == 0 else 1
    raise MaasError(f"no result at s3://{args.bucket}/{manifest_key} within {args.timeout:.0f} s")


def _manifest_of_upload(
    s3: Any, bucket: str, manifest_key: str, uploaded_version: str | None, started: float
) -> dict[str, Any] | None:
    """The manifest at `manifest_key` if it is this upload's, else None."""
    from botocore.exceptions import ClientError

    try:
        found = s3.get_object(Bucket=bucket, Key=manifest_key)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
        return None
    manifest: dict[str, Any] = json.loads(found["Body"].read())
    if uploaded_version and manifest.get("input_version"):
        return manifest if manifest["input_version"] == uploaded_version else None
    # An unversioned bucket: a manifest written since the upload began (S3 keeps seconds).
    return manifest if found["LastModified"].timestamp() >= started - 1 else None
