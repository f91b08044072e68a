"""A project `maas init` made synthesizes from its own directory, with its own maas.yaml, using
the CDK CLI `maas deploy` would run there (the checkout's, before `npm install`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from maas.cli import main
from maas.project import cdk_cli

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_cdk_synth_runs_in_a_new_project_on_its_own_maas_yaml(tmp_path: Path) -> None:
    project = tmp_path / "my-project"
    assert main(["init", str(project)]) == 0
    config = project / "maas.yaml"
    config.write_text(config.read_text().replace("stack_name: maas ", "stack_name: my-project "))

    done = subprocess.run(
        [*cdk_cli(project), "synth", "--no-notices", "-q"],
        cwd=project,
        env={**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true", "AWS_EC2_METADATA_DISABLED": "true"},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    # The project's stack, in the project's cdk.out/: not the checkout's maas.yaml or folder.
    template = json.loads((project / "cdk.out" / "my-project.template.json").read_text())
    assert any(r["Type"] == "AWS::Lambda::Function" for r in template["Resources"].values())
    assert not (REPO_ROOT / "cdk.out" / "my-project.template.json").exists()
