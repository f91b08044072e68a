"""The layering of maas/ is a contract (pyproject.toml's [tool.importlinter]), checked by
`lint-imports` in `make test`: it holds today, and it fails a change that breaks it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contracts_only(folder: Path) -> None:
    """A pyproject.toml in `folder` holding only the project's import-linter contracts."""
    text = (REPO_ROOT / "pyproject.toml").read_text()
    (folder / "pyproject.toml").write_text(text[text.index("\n[tool.importlinter]\n") :])


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # The copy under `root` comes first on the path, before the editable install of the real one.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copy_of_maas(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "maas", tmp_path / "maas", ignore=shutil.ignore_patterns("__pycache__"))
    contracts_only(tmp_path)
    return tmp_path


def test_the_contracts_hold_for_maas_as_it_is(copy_of_maas: Path) -> None:
    done = lint_imports(copy_of_maas)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_an_import_cycle_breaks_them(copy_of_maas: Path) -> None:
    with (copy_of_maas / "maas" / "errors.py").open("a") as errors:
        errors.write("\nimport maas.cli  # the lowest layer reaching for the highest\n")
    done = lint_imports(copy_of_maas)
    assert done.returncode == 1, done.stdout
    assert "maas.errors is not allowed to import maas.cli" in done.stdout
    assert "No cycles are allowed in maas." in done.stdout
    assert "- .errors -> .cli (1 import)" in done.stdout


def test_a_cycle_inside_one_package_breaks_them(copy_of_maas: Path) -> None:
    # registry.store is below registry.service (the service uses the store); a store that
    # reaches back for the service ties the two into a cycle, within the one layer.
    with (copy_of_maas / "maas" / "registry" / "store.py").open("a") as store:
        store.write("\nfrom maas.registry import service  # noqa\n")
    done = lint_imports(copy_of_maas)
    assert done.returncode == 1, done.stdout
    assert "No cycles are allowed in maas.registry." in done.stdout


def test_maas_importing_the_cdk_app_or_a_function_breaks_them(copy_of_maas: Path) -> None:
    with (copy_of_maas / "maas" / "dataplane.py").open("a") as dataplane:
        dataplane.write("\nimport maas_stack.stack  # noqa\n")
    done = lint_imports(copy_of_maas)
    assert done.returncode == 1, done.stdout
    assert "maas is not allowed to import maas_stack" in done.stdout
    assert "maas.dataplane -> maas_stack" in done.stdout


def test_make_test_runs_them() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    lint = makefile[makefile.index("\nlint:") :].split("\n\n", 1)[0]
    assert "$(BIN)/lint-imports" in lint
