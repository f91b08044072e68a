"""`maas release`: register, stage, score through the deployed API, gate, canary, promote."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from maas.cli.common import FAILED, UNEXPECTED, HelpFormatter, exit_codes
from maas.cli.models import add_registry_arguments
from maas.cli.sagemaker import follow_target


def add_release_command(commands: Any) -> None:
    release = commands.add_parser(
        "release",
        help="release a model version: staging, evaluation gate, optional canary, prod",
        epilog=exit_codes(
            "0  released (or planned, with --dry-run)",
            UNEXPECTED,
            FAILED,
            "3  stopped at staging by the evaluation gate",
            "4  rolled back by an alarm during the canary",
        ),
        formatter_class=HelpFormatter,
    )
    release.add_argument("model", help="the model to release a new version of")
    release.add_argument("--artifact", type=Path, required=True, help="the model file to release")
    release.add_argument(
        "--eval", dest="evaluation", type=Path, required=True, help=".npz: inputs and labels or targets"
    )
    release.add_argument(
        "--api-url", default=os.environ.get("MAAS_API_URL"), help="the deployed API (default: MAAS_API_URL)"
    )
    release.add_argument(
        "--sign",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="SigV4-sign the API requests, as an API with IAM auth wants (default: sign whenever AWS "
        "credentials are found; --sign fails without them)",
    )
    release.add_argument(
        "--config",
        type=Path,
        default=Path("maas.yaml"),
        help="its release: section holds the thresholds (default: %(default)s, else the defaults)",
    )
    release.add_argument(
        "--target",
        default="lambda",
        choices=["lambda", "sagemaker"],
        help="serve the version from Lambda or SageMaker (default: %(default)s)",
    )
    release.add_argument("--canary-weight", type=int, help="override release.canary.weight")
    release.add_argument("--canary-minutes", type=float, help="override release.canary.minutes")
    release.add_argument(
        "--no-canary", action="store_true", help="skip the canary even if maas.yaml sets one"
    )
    release.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    add_registry_arguments(release)
    release.set_defaults(run=_release)


def _release(args: argparse.Namespace) -> int:
    from maas.cli.common import aws_client, control_from_args
    from maas.config import CanaryPolicy, MaasConfig, ModelDeployment, Runtime, load_config
    from maas.errors import InvalidInput
    from maas.release import Release
    from maas.release.oip_client import OipHttpClient
    from maas.release.provenance import git_provenance

    if not args.api_url:
        raise InvalidInput(
            "--api-url (or MAAS_API_URL) is required: the release is scored through the deployed API"
        )
    if args.config.exists() or args.config != Path("maas.yaml"):
        config = load_config(args.config)
    else:  # no maas.yaml here: the defaults
        config = MaasConfig(models=[ModelDeployment(name=args.model, runtime=Runtime.ONNX)])
    policy = config.release
    if args.no_canary:
        policy = policy.model_copy(update={"canary": None})
    elif args.canary_weight is not None or args.canary_minutes is not None:
        overrides = {"weight": args.canary_weight, "minutes": args.canary_minutes}
        merged = (policy.canary or CanaryPolicy()).model_dump() | {
            k: v for k, v in overrides.items() if v is not None
        }
        policy = policy.model_copy(update={"canary": CanaryPolicy.model_validate(merged)})
    control = control_from_args(args)
    provenance = git_provenance(Path.cwd())
    if provenance is None:
        say("not in a Git working tree: the version records no commit")
    elif provenance.dirty:
        say(f"the working tree has uncommitted changes on top of {provenance.commit[:12]}")
    release = Release(
        control.registry,
        OipHttpClient(args.api_url, sign=args.sign, region=config.region),
        policy,
        alarm_prefix=policy.alarm_prefix or config.stack_name,
        cloudwatch=aws_client("cloudwatch", args.endpoint_url),
        say=say,
        control=control,
        on_alias=lambda alias: _say_target(args, control, alias),
    )
    outcome = release.run(
        args.model,
        args.artifact,
        args.evaluation,
        provenance=provenance,
        target=args.target,
        dry_run=args.dry_run,
    )
    return int(outcome.code)


def _say_target(args: argparse.Namespace, control: Any, alias: Any) -> None:
    """Where the endpoint of a SageMaker model stands after the release moved its alias."""
    follow_target(args, control, alias)


def say(line: str) -> None:
    print(f"maas release: {line}", file=sys.stderr, flush=True)
