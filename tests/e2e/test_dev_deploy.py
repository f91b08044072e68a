"""`maas dev --deploy`: the user's command, run in a project `maas init` made, deploys the
project's CDK app to the embedded AWS, prints what it deployed, serves the deployed API on
`--port`, and destroys the stack at Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maas.cli import main
from tests.e2e.conftest import free_port
from tests.e2e.test_cdk_deploy import call

pytestmark = pytest.mark.e2e


def test_maas_dev_deploy_in_a_new_project_serves_its_api_on_the_port_asked_until_ctrl_c(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    assert main(["init", str(project)]) == 0  # no node_modules: maas's own CDK CLI deploys it
    config = project / "maas.yaml"
    config.write_text(config.read_text().replace("stack_name: maas ", "stack_name: maas-dev-deploy "))
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "maas.cli", "dev", "--deploy", "--port", str(port), "--aws-port", str(free_port())],
            cwd=project, stdout=output, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not re.search(r"ApiUrl:\s+(\S+)", log.read_text()):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        api = re.search(r"ApiUrl:\s+(\S+)", log.read_text())[1]  # type: ignore[index]
        assert api == f"http://127.0.0.1:{port}"
        assert "stack maas-dev-deploy is deployed" in log.read_text()  # the project's maas.yaml
        assert "RegistryTable:" in log.read_text()
        assert call(api, "GET", "/v2/health/ready") == (200, {"ready": True})
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 0, log.read_text()
        assert "maas dev --deploy: stopped" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
