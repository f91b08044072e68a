"""The README, run as written: every shell and Python block, in order, in one shell, against a
`maas dev` this test starts, as a new user would after `make dev` (in a second shell). A command
whose comment says `refused` must fail; every other one must succeed. Commands that need real
AWS, Docker or a server that runs until stopped are skipped, each by name (SKIPPED): a new
command the README adds is run, or must be named here.

The README's ports (8080 for maas dev, 4566 for its embedded AWS) are replaced by the test
server's; the commands run in a scratch folder that has the checkout's `.venv/`, `examples/`,
`maas.yaml` and git history, so the files the README makes land there and not in the checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import DevServer, running_dev_server

pytestmark = pytest.mark.e2e

README = REPO_ROOT / "README.md"
BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```", re.S | re.M)
# The start of each command that is not run, and why.
SKIPPED = {
    "make dev": "the test runs maas dev itself, as make dev would",
    "make test": "this test is part of make test",
    "npx cdk synth": "synthesizing the stack needs the Lambda layers (make setup); tests/infra does it",
    "npx cdk deploy": "deploys to real AWS",
    ".venv/bin/maas exporter serve": "a server that runs until stopped; tests/e2e/test_prometheus.py runs it",
    ".venv/bin/maas dev --deploy": "deploys the CDK app for minutes; tests/e2e/test_dev_deploy.py does it",
    "npm install": "downloads the CDK CLI into a new project; make setup installs this checkout's",
    "$MAAS dev --deploy": "deploys the CDK app for minutes; tests/e2e/test_dev_deploy.py does it",
    "$MAAS deploy": "deploys to real AWS",
    "docker run": "needs a Docker engine and a LocalStack licence",
    "MAAS_E2E_ENDPOINT=": "needs LocalStack (above)",
    ".venv/bin/maas models promote digits-large": "moves a SageMaker endpoint, which needs a deployed stack",
    ".venv/bin/maas models endpoint digits-large": "reads a SageMaker endpoint, which needs a deployed stack",
}


def readme_commands() -> list[str]:
    """Each command of the README's shell blocks (a line, with its continuation lines and any
    quoted text spanning lines), and each Python block as one command."""
    commands = []
    for kind, body in BLOCK.findall(README.read_text()):
        if kind == "python":
            commands.append(f".venv/bin/python - <<'PYTHON'\n{body}PYTHON")
            continue
        pending, quote = "", None
        for line in body.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending += line + "\n"
            quote = quote_open_after(line, quote)
            if line.endswith("\\") or quote is not None:
                continue
            commands.append(pending.rstrip("\n"))
            pending = ""
    return commands


def quote_open_after(line: str, quote: str | None) -> str | None:
    """The quote (' or ") still open at the end of `line`, given the one open at its start; a
    `#` outside quotes after a space begins a comment, whose apostrophes open nothing."""
    previous = " "
    for char in line:
        if quote is None and char == "#" and previous.isspace():
            break
        if quote is None and char in "'\"":
            quote = char
        elif char == quote and (quote == "'" or previous != "\\"):
            quote = None
        previous = char
    return quote


def skip_reason(command: str) -> str | None:
    return next((why for start, why in SKIPPED.items() if command.startswith(start)), None)


def scratch_folder(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    for name in (".venv", "examples", "maas.yaml", ".git"):
        (work / name).symlink_to(REPO_ROOT / name)
    return work


def as_run_against(command: str, server: DevServer) -> str:
    aws_port = server.aws_endpoint.rsplit(":", 1)[1]
    for host in ("127.0.0.1:8080", "localhost:8080"):
        command = command.replace(host, f"127.0.0.1:{server.port}")
    return command.replace("127.0.0.1:4566", f"127.0.0.1:{aws_port}")


# As long as the script it runs may take: the README trains and converts models of every framework
# (TensorFlow and PyTorch start in seconds each), which passes pytest's 300 s on a loaded machine.
@pytest.mark.timeout(660)
def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    commands = readme_commands()
    assert len(commands) > 40, "the README's command blocks were not found"
    run = [(index, command) for index, command in enumerate(commands) if skip_reason(command) is None]
    bare = [command for command in commands if re.search(r"(^|[\s;&|(])python3?\s", command)]
    assert not bare, f"the README must use .venv/bin/python, not the python on the PATH: {bare}"
    skipped = {skip_reason(command) for command in commands} - {None}
    # Every reason names a command the README still has, so the list cannot go stale.
    assert skipped == set(SKIPPED.values())

    with running_dev_server(tmp_path / "models") as server:
        script = "".join(
            f"printf '\\n::start {index}\\n'\n{as_run_against(command, server)}\nprintf '\\n::rc {index} %s\\n' $?\n"
            for index, command in run
        )
        environment = {
            key: value for key, value in os.environ.items() if key not in ("AWS_ENDPOINT_URL", "MAAS_URL")
        }
        done = subprocess.run(
            ["bash", "-c", script],
            check=False,
            cwd=scratch_folder(tmp_path),
            env={
                **environment,
                "MAAS_URL": server.url,
                "PATH": f"{REPO_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
            },
            capture_output=True,
            text=True,
            timeout=600,
        )
    output = done.stdout + done.stderr
    codes = {int(index): int(code) for index, code in re.findall(r"^::rc (\d+) (\d+)$", done.stdout, re.M)}
    assert sorted(codes) == [index for index, _ in run], output[-4000:]
    wrong = []
    for index, command in run:
        refused = "# refused" in command
        if (codes[index] != 0) != refused:
            start = done.stdout.index(f"::start {index}\n")
            end = done.stdout.index(f"::rc {index} ")
            wrong.append(
                f"{'succeeded' if refused else f'exit {codes[index]}'}: {command}\n{done.stdout[start:end][-1500:]}"
            )
    assert not wrong, "\n\n".join(wrong) + "\n\nstderr:\n" + done.stderr[-3000:]
