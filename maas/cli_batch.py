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
    from botocore.exceptions import ClientError

    from maas.batch.formats import format_of
    from maas.batch.processor import FAILED, output_key
    from maas.cli_models import aws_client, upload_progress
    from maas.sources import check_name

    if not args.file.is_file():
        raise InvalidInput(f"no file at {args.file}")
    format_of(args.file.name)
    check_name("model name", args.model)
    s3 = aws_client("s3", args.endpoint_url)
    prefix = f"inputs/{args.model}/{args.alias}/" if args.alias else f"inputs/{args.model}/"
    key = prefix + args.file.name
    manifest_key = output_key(args.model, args.alias, args.file.name) + ".manifest.json"
    started = time.time()
    s3.upload_file(str(args.file), args.bucket, key, Callback=upload_progress(args.file.stat().st_size))
    print(f"uploaded s3://{args.bucket}/{key}", file=sys.stderr)
    if args.no_wait:
        return 0
    while time.time() - started < args.timeout:
        try:
            head = s3.head_object(Bucket=args.bucket, Key=manifest_key)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
            time.sleep(0.5)  # not there yet
            continue
        if head["LastModified"].timestamp() >= started - 1:
            manifest = json.loads(s3.get_object(Bucket=args.bucket, Key=manifest_key)["Body"].read())
            print(json.dumps(manifest, indent=2))
            if manifest.get("status") == FAILED:
                raise MaasError(f"s3://{args.bucket}/{key} was not processed: {manifest['reason']}")
            return 0 if manifest["rows_failed"] == 0 else 1
        time.sleep(0.5)
    raise MaasError(f"no result at s3://{args.bucket}/{manifest_key} within {args.timeout:.0f} s")
