"""The GitHub Actions workflows users copy: actionlint finds nothing, and AWS is reached
only through OIDC roles, never long-lived keys."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint() -> str:
    found = Path(sys.executable).parent / "actionlint"
    if found.exists():
        return str(found)
    on_path = shutil.which("actionlint")
    assert on_path, "actionlint is not installed (it comes with the dev extra: pip install -e '.[dev]')"
    return on_path


def test_ci_deploy_and_release_workflows_exist() -> None:
    assert [path.name for path in WORKFLOWS] == ["ci.yml", "deploy.yml", "release.yml"]


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    done = subprocess.run(
        [actionlint(), "-no-color", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    done = subprocess.run(
        [actionlint(), "-no-color", str(broken)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0
    assert "nope" in done.stdout


@pytest.mark.parametrize("name", ["deploy.yml", "release.yml"])
def test_aws_is_reached_with_an_oidc_role_and_no_stored_keys(name: str) -> None:
    text = (REPO_ROOT / ".github" / "workflows" / name).read_text()
    workflow = yaml.safe_load(text)
    assert workflow["permissions"]["id-token"] == "write"
    steps = next(iter(workflow["jobs"].values()))["steps"]
    (login,) = [
        step for step in steps if step.get("uses", "").startswith("aws-actions/configure-aws-credentials")
    ]
    assert "role-to-assume" in login["with"]
    assert "AWS_SECRET_ACCESS_KEY" not in text and "aws-access-key-id" not in text


def test_ci_runs_the_readme_test_command_and_cdk_synth() -> None:
    steps = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text())["jobs"]["test"][
        "steps"
    ]
    commands = [step.get("run", "") for step in steps]
    assert "make test" in commands
    assert any(command.startswith("npx cdk synth") for command in commands)
    release = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert "maas release" in str(release["jobs"]["release"]["steps"])
