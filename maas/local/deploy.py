"""`maas dev --deploy`: the project's CDK app deployed with the real CDK CLI to the embedded
AWS on 127.0.0.1, served until Ctrl-C, then destroyed.

The embedded AWS is moto with maas's extensions (maas.local.moto): functions run in
local Python workers and the deployed HTTP API answers on loopback, on `--port` or a free port
(SigV4 with the local credentials testing / testing, as the deployed API wants IAM).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from maas.config import load_config
from maas.errors import ConfigError
from maas.local.aws import start_embedded_aws
from maas.local.http_api import APIS
from maas.project import cdk_cli

if TYPE_CHECKING:
    from types import FrameType


def account_of(endpoint: str, region: str) -> str:
    """The account the local AWS at `endpoint` runs as (moto's or LocalStack's)."""
    import boto3

    sts = boto3.client(
        "sts",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return str(sts.get_caller_identity()["Account"])


def run_deployed(
    project: Path, config_path: Path, *, aws_port: int = 4566, api_port: int | None = None
) -> int:
    """Deploy, print what was deployed, serve until Ctrl-C or SIGTERM, destroy; the exit code.
    The stack's first HTTP API answers on 127.0.0.1:`api_port` when given, else on a free port.
    Raises ConfigError for a bad maas.yaml, a missing cdk.json or CDK CLI, or a port taken."""
    config = load_config(config_path)
    cli = cdk_cli(project)
    if api_port is not None:
        _check_free(api_port)
        APIS.serve_first_on(api_port)
    aws, endpoint = start_embedded_aws(aws_port)
    scratch = Path(tempfile.mkdtemp(prefix="maas-deploy-"))
    cdk = CdkCli(
        project,
        endpoint,
        config.region,
        ["-c", f"config={config_path.resolve()}", "-o", str(scratch / "cdk.out")],
        cli=cli,
    )
    try:
        account = account_of(endpoint, config.region)
        cdk.run("bootstrap", f"aws://{account}/{config.region}", with_app=False)
        cdk.run("deploy", "--require-approval", "never", "--outputs-file", str(scratch / "outputs.json"))
        outputs = json.loads((scratch / "outputs.json").read_text())[config.stack_name]
        print(
            f"maas dev --deploy: stack {config.stack_name} is deployed to the embedded AWS at {endpoint}",
            flush=True,
        )
        for key, value in sorted(outputs.items()):
            print(f"  {key + ':':<22}{value}", flush=True)
        print(
            f"  call the API with SigV4 (testing / testing), e.g. curl --aws-sigv4 "
            f'"aws:amz:{config.region}:execute-api" --user testing:testing {outputs.get("ApiUrl", "")}/v2/health/ready',
            flush=True,
        )
        print(f"  CLI: export AWS_ENDPOINT_URL={endpoint} MAAS_REGISTRY_TABLE={outputs.get('RegistryTable', '')} "
              f"MAAS_ARTIFACT_BUCKET={outputs.get('ArtifactBucketName', '')}", flush=True)  # fmt: skip
        _wait_for_stop()
        print("maas dev --deploy: destroying the stack", flush=True)
        cdk.run("destroy", "--force")
        print("maas dev --deploy: stopped", flush=True)
        return 0
    finally:
        aws.stop()


def _check_free(port: int) -> None:
    # Before the deploy: taken, it would fail deep inside CloudFormation's stack events.
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise ConfigError(
                f"cannot listen on 127.0.0.1:{port} for the deployed API ({error.strerror}); pass another --port"
            ) from None


class CdkCli:
    """The project's CDK CLI (maas.project.cdk_cli, unless `cli`), pointed at a local AWS endpoint."""

    def __init__(
        self, project: Path, endpoint: str, region: str, app_args: list[str], *, cli: list[str] | None = None
    ) -> None:
        self.cli = cli or cdk_cli(project)
        self.project = project
        self.app_args = app_args
        self.env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def run(self, command: str, *args: str, with_app: bool = True) -> None:
        print(f"maas dev --deploy: cdk {command}", flush=True)
        done = subprocess.run(
            [*self.cli, command, *args, *(self.app_args if with_app else []), "--no-notices"],
            cwd=self.project, env=self.env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            said = (done.stdout + done.stderr).splitlines()
            failures = [line for line in said if any(mark in line for mark in ("❌", "‣", "Error"))]
            raise ConfigError(f"cdk {command} failed:\n" + "\n".join(failures or said[-20:]))


def _wait_for_stop() -> None:
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stop.wait()
