"""`make mutate` covers the modules that hold promises, each with tests that exist, and the bare
`mutmut run` configuration in pyproject.toml says the same as bench/mutation_report.py."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMISED = {
    "maas/batch",
    "maas/registry",
    "maas/metrics/exporter.py",
    "maas/runtimes/sagemaker.py",
    "maas/local/sigv4.py",
    "maas/protocol/codec.py",
}


def mutation_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "mutation_report", REPO_ROOT / "bench" / "mutation_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mutmut_config(text: str) -> dict[str, object]:
    return dict(tomllib.loads(text)["tool"]["mutmut"])


def test_every_module_that_holds_promises_is_mutated_with_tests_that_exist() -> None:
    modules = mutation_report().MODULES
    assert set(modules) == PROMISED
    for module, args in modules.items():
        assert (REPO_ROOT / module).exists(), module
        files = [arg.split("::")[0] for arg in args if arg.startswith("tests/")]
        assert files, f"{module} has no tests"
        for name in files:
            assert (REPO_ROOT / name).is_file(), name


def test_a_bare_mutmut_run_takes_the_same_modules_and_tests() -> None:
    report = mutation_report()
    config = mutmut_config((REPO_ROOT / "pyproject.toml").read_text())
    assert set(config["only_mutate"]) == {report.module_pattern(m) for m in report.MODULES}
    selection = config["pytest_add_cli_args_test_selection"]
    assert set(selection) == {arg for args in report.MODULES.values() for arg in args}


def test_each_module_runs_with_its_own_tests_and_the_shared_settings() -> None:
    report = mutation_report()
    shared = mutmut_config((REPO_ROOT / "pyproject.toml").read_text())
    narrowed = report.narrowed_pyproject("maas/batch", report.MODULES["maas/batch"])
    config = mutmut_config(narrowed)
    assert config["only_mutate"] == ["maas/batch/*"]
    assert config["pytest_add_cli_args_test_selection"] == report.MODULES["maas/batch"]
    for key in ("source_paths", "also_copy", "pytest_add_cli_args"):
        assert config[key] == shared[key]
    # pytest runs the mutants with the project's own settings.
    assert (
        tomllib.loads(narrowed)["tool"]["pytest"]
        == tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    )


def test_mutation_testing_is_not_part_of_make_test() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    test_target = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert "mutate" not in test_target
    assert "mutate:" in makefile
