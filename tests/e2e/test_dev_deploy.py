"""`maas dev --deploy`: the user's command deploys the CDK app to the embedded AWS, prints
what it deployed, serves the deployed API, and destroys the stack at Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maas.config import EXAMPLE
from tests.e2e.conftest import free_port
from tests.e2e.test_cdk_deploy import call

pytestmark = pytest.mark.e2e


def test_maas_dev_deploy_serves_the_deployed_api_until_ctrl_c(tmp_path: Path) -> None:
    config = tmp_path / "maas.yaml"
    config.write_text(EXAMPLE.replace("stack_name: maas ", "stack_name: maas-dev-deploy "))
    log = tmp_path / "dev.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "maas.cli", "dev", "--deploy", "--aws-port", str(free_port()), "--config", str(config)],
            stdout=output, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not re.search(r"ApiUrl:\s+(\S+)", log.read_text()):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        api = re.search(r"ApiUrl:\s+(\S+)", log.read_text())[1]  # type: ignore[index]
        assert "RegistryTable:" in log.read_text()
        assert call(api, "GET", "/v2/health/ready") == (200, {"ready": True})
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 0, log.read_text()
        assert "maas dev --deploy: stopped" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
