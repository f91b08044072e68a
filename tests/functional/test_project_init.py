"""`maas init` makes a project that deploys from its own directory, and says what to do next;
`maas deploy` there runs the project's CDK CLI (else maas's own) or says what is missing."""

from __future__ import annotations

import json
import shlex
import socket
import sys
from pathlib import Path

import pytest

import maas.project
from maas.cli import main
from maas.config import EXAMPLE, load_config
from maas.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
WRITTEN = ["maas.yaml", "cdk.json", "package.json", "package-lock.json", ".gitignore", "models/README.md"]


def test_maas_init_in_an_empty_directory_writes_a_project_and_the_next_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0

    assert (tmp_path / "maas.yaml").read_text() == EXAMPLE
    assert load_config(tmp_path / "maas.yaml").models[0].name == "digits"
    cdk = json.loads((tmp_path / "cdk.json").read_text())
    # This Python runs the checkout's CDK app, by absolute paths, on the project's maas.yaml.
    assert shlex.split(cdk["app"]) == [sys.executable, str(REPO_ROOT / "infra" / "app.py")]
    assert cdk["context"]["config"] == "maas.yaml"
    assert (tmp_path / "models").is_dir()
    assert {"node_modules/", "cdk.out/", ".maas/"} <= set((tmp_path / ".gitignore").read_text().split())

    wrote, _, steps = capsys.readouterr().out.partition("\nnext:\n")
    assert all(name in wrote for name in WRITTEN)
    commands = [line.split("#")[0].strip() for line in steps.splitlines()]
    assert commands[:2] == ["edit maas.yaml", "npm install"]  # not `cd`: it was made here
    assert commands[2].endswith("maas dev --deploy") and commands[3] == "npx cdk synth"
    assert commands[4].endswith("maas deploy") and len(commands) == 5


def test_the_project_pins_the_cdk_cli_maas_is_tested_with(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "My Project")]) == 0
    project = tmp_path / "My Project"
    package = json.loads((project / "package.json").read_text())
    lock = json.loads((project / "package-lock.json").read_text())
    ours = json.loads((REPO_ROOT / "package.json").read_text())
    our_lock = json.loads((REPO_ROOT / "package-lock.json").read_text())

    assert package["devDependencies"] == {"aws-cdk": ours["devDependencies"]["aws-cdk"]}
    # `npm ci` checks the lock against package.json: same name, same dependencies, same tarball.
    assert package["name"] == lock["name"] == lock["packages"][""]["name"] == "my-project"
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]
    assert lock["packages"]["node_modules/aws-cdk"] == our_lock["packages"]["node_modules/aws-cdk"]


def test_maas_init_names_the_files_it_will_not_overwrite_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "maas.yaml").write_text("stack_name: mine\n")
    (tmp_path / ".gitignore").write_text("secrets/\n")

    assert main(["init", str(tmp_path)]) == 2

    err = capsys.readouterr().err
    assert "maas.yaml, .gitignore" in err and "--force" in err
    assert (tmp_path / "maas.yaml").read_text() == "stack_name: mine\n"
    assert (tmp_path / ".gitignore").read_text() == "secrets/\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == [".gitignore", "maas.yaml"]


def test_maas_init_force_replaces_the_files_and_keeps_the_models(tmp_path: Path) -> None:
    (tmp_path / "maas.yaml").write_text("stack_name: mine\n")
    (tmp_path / "models" / "digits" / "1").mkdir(parents=True)
    (tmp_path / "models" / "digits" / "1" / "model.onnx").write_bytes(b"onnx")

    assert main(["init", "--force", str(tmp_path)]) == 0

    assert (tmp_path / "maas.yaml").read_text() == EXAMPLE
    assert (tmp_path / "models" / "digits" / "1" / "model.onnx").read_bytes() == b"onnx"
    assert all((tmp_path / name).is_file() for name in WRITTEN)


def test_maas_init_makes_a_missing_directory_and_says_to_cd_into_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "new/project"]) == 0
    assert (tmp_path / "new" / "project" / "cdk.json").is_file()
    out = capsys.readouterr().out
    assert out.index("cd new/project") < out.index("edit maas.yaml")


def test_maas_init_refuses_a_file_for_its_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["init", str(tmp_path / "notes.txt")]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_a_maas_without_its_checkout_says_it_cannot_make_a_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(maas.project, "CHECKOUT", tmp_path / "site-packages")
    assert main(["init", str(tmp_path / "project")]) == 2
    assert "no CDK app beside it" in capsys.readouterr().err
    assert not (tmp_path / "project").exists()


def _fake_cdk(bin_dir: Path) -> Path:
    """A CDK CLI that records where it ran and with what, in `bin_dir/called`."""
    bin_dir.mkdir(parents=True)
    cli = bin_dir / "cdk"
    cli.write_text('#!/bin/sh\nprintf "%s\\n" "$PWD" "$@" > "$(dirname "$0")/called"\n')
    cli.chmod(0o755)
    return bin_dir / "called"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project `maas init` made, as the current directory."""
    directory = tmp_path / "project"
    assert main(["init", str(directory)]) == 0
    monkeypatch.chdir(directory)
    return directory


def test_maas_deploy_runs_the_projects_own_cdk_cli_in_the_project(project: Path) -> None:
    called = _fake_cdk(project / "node_modules" / ".bin")

    assert main(["deploy", "--", "--require-approval", "never"]) == 0

    cwd, *argv = called.read_text().splitlines()
    assert Path(cwd) == project
    assert argv == [
        "deploy",
        "--no-notices",
        "-c",
        f"config={project / 'maas.yaml'}",
        "--require-approval",
        "never",
    ]


def test_maas_deploy_falls_back_to_the_cdk_cli_of_maas_checkout(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maas.project, "CHECKOUT", tmp_path / "checkout")
    called = _fake_cdk(tmp_path / "checkout" / "node_modules" / ".bin")

    assert main(["deploy"]) == 0

    assert Path(called.read_text().splitlines()[0]) == project


def test_maas_deploy_without_a_cdk_cli_says_what_is_missing_and_how_to_get_it(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(maas.project, "CHECKOUT", tmp_path / "checkout")

    assert main(["deploy"]) == 2

    err = capsys.readouterr().err
    assert f"no CDK CLI: neither {project}/node_modules/.bin/cdk nor {tmp_path}/checkout/node_modules" in err
    assert f"run `npm install` in {project}" in err


def test_maas_deploy_without_node_says_so(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_cdk(project / "node_modules" / ".bin")
    monkeypatch.setenv("PATH", str(project / "models"))
    assert main(["deploy"]) == 2
    assert "needs Node.js 18 or later: no `node` on the PATH" in capsys.readouterr().err


def test_maas_deploy_outside_a_project_says_where_to_run_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["deploy"]) == 2
    assert "cannot read maas.yaml" in capsys.readouterr().err

    (tmp_path / "maas.yaml").write_text(EXAMPLE)
    assert main(["deploy"]) == 2
    assert f"{tmp_path} has no cdk.json: run this in a project made by `maas init`" in capsys.readouterr().err


def test_maas_dev_deploy_refuses_a_port_already_taken_before_deploying(project: Path) -> None:
    from maas.local.deploy import run_deployed

    _fake_cdk(project / "node_modules" / ".bin")

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port} for the deployed API"):
            run_deployed(project, project / "maas.yaml", aws_port=0, api_port=port)


def test_the_first_deployed_api_answers_on_the_port_asked_and_later_ones_on_free_ports() -> None:
    from maas.local.http_api import LoopbackApis

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    apis = LoopbackApis()
    apis.serve_first_on(port)
    try:
        assert apis.url("first") == f"http://127.0.0.1:{port}"
        assert apis.url("first") == f"http://127.0.0.1:{port}"  # started once
        assert apis.url("second") != f"http://127.0.0.1:{port}"
    finally:
        apis.stop()
