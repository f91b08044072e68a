"""`maas batch submit`: upload a file of inputs and wait for its predictions (`status`, `list`
and `get` follow a file after it is submitted: maas.cli.batch_results)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from maas.cli.batch_results import add_result_commands
from maas.cli.common import (
    EXIT_CODES,
    HelpFormatter,
    Verbs,
    add_json_option,
    default,
    exit_codes,
    shared_options,
)
from maas.errors import InvalidInput, MaasError


def add_batch_commands(commands: Any) -> None:
    batch = commands.add_parser(
        "batch",
        help="batch inference on files in S3: submit, status, list, get",
        epilog=EXIT_CODES,
        formatter_class=HelpFormatter,
    )
    add_bucket_arguments(batch)
    actions = batch.add_subparsers(dest="action", required=True, metavar="ACTION")
    verbs = Verbs(actions, shared_options(add_bucket_arguments))
    submit = verbs.add(
        "submit",
        help="upload FILE under inputs/<model>/ and wait for the result",
        description="Upload FILE under inputs/<model>/[<alias>/] and wait for its manifest.",
        epilog=exit_codes(
            "0  every row predicted",
            "1  some rows failed (see the errors file the manifest names)",
            "2  the file was not processed (the reason is printed), no result came in time,\n"
            "or the command was refused (bad usage, a file that does not exist)",
        ),
    )
    submit.add_argument("file", type=Path, help=".jsonl, .csv or .npy")
    submit.add_argument("--model", required=True, help="the model to run the rows")
    submit.add_argument(
        "--alias", default=None, help="alias or version to run (default: the model's default)"
    )
    submit.add_argument("--timeout", type=float, default=300, help="seconds to wait (default: %(default)s)")
    submit.add_argument("--no-wait", action="store_true", help="upload and return without waiting")
    submit.set_defaults(run=_submit)
    add_result_commands(verbs)


def add_bucket_arguments(parser: argparse.ArgumentParser, on_verb: bool = False) -> None:
    """Where batch files live; on a verb too, so that they may follow it (see shared_options)."""
    parser.add_argument(
        "--endpoint-url",
        default=default(None, on_verb),
        help="AWS endpoint (default: AWS_ENDPOINT_URL, else AWS itself)",
    )
    parser.add_argument(
        "--bucket",
        default=default(os.environ.get("MAAS_ARTIFACT_BUCKET", "maas-artifacts"), on_verb),
        help="the bucket batch files are uploaded to (default: MAAS_ARTIFACT_BUCKET, else maas-artifacts)",
    )
    add_json_option(parser, on_verb)


def _submit(args: argparse.Namespace) -> int:
    from maas.batch.formats import format_of
    from maas.batch.processor import FAILED, output_key
    from maas.cli.common import aws_client, progress_bar
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
    s3.upload_file(
        str(args.file), args.bucket, key, Callback=progress_bar(args.file.stat().st_size, "upload")
    )
    print(f"uploaded s3://{args.bucket}/{key}", file=sys.stderr)
    if args.no_wait:
        return 0
    # On a versioned bucket (the stack's, maas dev's) the manifest names the input version
    # it ran, which tells this upload's result from one written a moment before.
    uploaded_version = s3.head_object(Bucket=args.bucket, Key=key).get("VersionId")
    waiting = f"waiting up to {args.timeout:.0f} s for its result (the file runs whether or not you wait)"
    print(waiting, file=sys.stderr)
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
