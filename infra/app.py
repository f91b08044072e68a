"""The CDK app: `npx cdk synth` / `npx cdk deploy` read `maas.yaml` (or `-c config=PATH`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks
from maas_stack.stack import MaasStack

from maas.config import load_config
from maas.errors import MaasError

REPO_ROOT = Path(__file__).resolve().parents[1]
# Feature flags this app is written for; set here so that `cdk synth` and the tests agree.
CONTEXT = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/core:checkSecretUsage": True,
    "@aws-cdk/aws-lambda:recognizeLayerVersion": True,
}


def build_app(config_path: Path | None = None, outdir: str | None = None) -> App:
    """The app for `maas.yaml` (or `-c config=PATH`, or MAAS_CONFIG), with cdk-nag's
    AwsSolutions checks on every construct."""
    app = App(outdir=outdir, context=CONTEXT) if outdir else App(context=CONTEXT)
    path = Path(
        config_path
        or app.node.try_get_context("config")
        or os.environ.get("MAAS_CONFIG")
        or REPO_ROOT / "maas.yaml"
    )
    config = load_config(path)
    MaasStack(
        app, config.stack_name, config=config, env=Environment(account=config.account, region=config.region)
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    try:
        app = build_app()
    except MaasError as error:
        sys.exit(f"maas: {error.message}")
    app.synth()


if __name__ == "__main__":
    main()
