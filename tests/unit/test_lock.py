"""Supply chain: the test command installs exact, hash-checked versions from requirements.lock,
and the lock holds every dependency pyproject.toml declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK = (REPO_ROOT / "requirements.lock").read_text()


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    return {
        normalized(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^ \\\n]+)", LOCK, re.MULTILINE)
    }


def test_every_declared_dependency_is_pinned_in_the_lock() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in ("onnx", "tflite", "demo", "local", "infra", "exporter", "convert", "dev"):
        declared += project["optional-dependencies"][extra]
    names = {normalized(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]) for requirement in declared}
    missing = sorted(names - set(locked()))
    assert not missing, f"not in requirements.lock (run `make lock`): {missing}"


def test_every_pin_carries_hashes() -> None:
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.split("\n", 2)[2])
    pins = [block for block in blocks if "==" in block.split("\n", 1)[0]]
    assert len(pins) == len(locked()) > 100
    assert all("--hash=sha256:" in block for block in pins)


def test_the_test_command_installs_from_the_lock_with_hashes() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes $(TORCH_WHEELS) -r requirements.lock" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
