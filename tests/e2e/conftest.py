"""`maas dev` in a subprocess on free loopback ports, stopped by the tests that start it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest

# Short, so that the tests of promotion see the new alias quickly (the default is 5 s).
ALIAS_TTL = 1.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DevServer:
    def __init__(self, process: subprocess.Popen[str], log: Path, port: int, aws_port: int) -> None:
        self.process = process
        self.log = log
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.aws_endpoint = f"http://127.0.0.1:{aws_port}"

    def wait_until_live(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"maas dev exited early:\n{self.log.read_text()}")
            try:
                with urlopen(f"{self.url}/v2/health/live", timeout=1) as response:
                    if response.status == 200:
                        return
            except HTTPError as error:
                if error.code == 401:  # up, with --auth iam
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("maas dev did not come up")

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a user would; the exit code and everything it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        # Stopping waits for the workers, writes the state and stops the embedded AWS.
        self.process.wait(timeout=90)
        return self.process.returncode, self.log.read_text()


@contextlib.contextmanager
def running_dev_server(models: Path, *extra: str) -> Iterator[DevServer]:
    """`maas dev` on free loopback ports serving `models` (plus the demo models), killed at exit."""
    port, aws_port = free_port(), free_port()
    # A file, not a pipe: a pipe nobody reads fills up and blocks the server's request log.
    log = models.parent / f"{models.name}.log"
    # A state folder of its own: a test server never restores or overwrites another's (or the user's).
    state = models.parent / f"{models.name}.state"
    command = [
        "dev", "--port", str(port), "--aws-port", str(aws_port), "--alias-ttl", str(ALIAS_TTL),
        "--state", str(state), *extra,
    ]  # fmt: skip
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "maas.cli", *command, "--models", str(models)],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = DevServer(process, log, port, aws_port)
    try:
        server.wait_until_live()
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with running_dev_server(tmp_path_factory.mktemp("dev-models")) as server:
        yield server
