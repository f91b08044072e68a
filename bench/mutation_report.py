"""Mutation testing of the modules that hold promises (`make mutate`): mutmut changes their code one
small edit at a time (a `<` for a `<=`, a dropped argument, a constant plus one) and runs the tests
that cover the module; a mutant no test notices is a promise the tests do not hold. Prints, per
module, how many mutants the tests killed; RELIABILITY.md records the figures.

    .venv/bin/python bench/mutation_report.py run [MODULE ...]     # mutate, test, then report
    .venv/bin/python bench/mutation_report.py report [MODULE ...]  # the figures of the last run
    .venv/bin/python bench/mutation_report.py survivors MODULE     # the diff of each surviving mutant

Each module runs in a folder of its own, mutants/<module>/, whose pyproject.toml is this project's
with [tool.mutmut] narrowed to the module and its tests: mutmut keeps its copy of the project and its
results in `mutants/` under where it runs, and one module's test selection changing would otherwise
throw away the results of the others. A second run only tests mutants of functions that changed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "mutants"
GOAL = 0.80

# Each module, and the tests that cover it (end-to-end tests run `maas dev` in another process,
# where mutmut cannot see which test reached which function, so they are not among them).
MODULES: dict[str, list[str]] = {
    "maas/protocol/codec.py": [
        "tests/unit/test_codec.py",
        "tests/unit/test_binary.py",
        "tests/unit/test_codec_properties.py",
        "tests/functional/test_predict_handler.py",
        "tests/unit/test_codec_edges.py",
        # It counts Python calls while decoding, and mutmut's trampolines are Python calls.
        "--deselect",
        "tests/unit/test_codec.py::test_a_1000_by_64_fp32_request_is_decoded_without_walking_its_elements_in_python",
    ],
    "maas/local/sigv4.py": ["tests/unit/test_sigv4.py"],
    "maas/batch": [
        "tests/functional/test_batch.py",
        "tests/functional/test_batch_sqs.py",
        "tests/functional/test_faults.py",
    ],
    "maas/runtimes/sagemaker.py": ["tests/functional/test_sagemaker.py"],
    "maas/metrics/exporter.py": [
        "tests/functional/test_exporter.py",
        "tests/unit/test_monitoring_examples.py",
    ],
    "maas/registry": [
        "tests/functional/test_registry.py",
        "tests/functional/test_registry_handler.py",
        "tests/functional/test_registry_races.py",
        "tests/functional/test_registry_source.py",
        "tests/functional/test_cli_models.py",
    ],
}


def module_pattern(module: str) -> str:
    """The only_mutate glob of a module: a file as it is, a package as everything under it."""
    return module if module.endswith(".py") else f"{module}/*"


def folder_of(module: str) -> Path:
    return WORK / module.removesuffix(".py").replace("/", ".")


def mutmut_settings() -> dict[str, object]:
    return dict(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"])


def narrowed_pyproject(module: str, tests: list[str]) -> str:
    """This project's pyproject.toml with [tool.mutmut] narrowed to one module and its tests."""
    text = (REPO / "pyproject.toml").read_text()
    settings = mutmut_settings()
    settings.update(only_mutate=[module_pattern(module)], pytest_add_cli_args_test_selection=tests)
    # The section's values are strings, lists of strings and booleans, which JSON writes as TOML does.
    section = "[tool.mutmut]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    narrowed, count = re.subn(r"^\[tool\.mutmut\]\n(?:(?!\[).*\n)*", section + "\n", text, flags=re.MULTILINE)
    assert count == 1, "pyproject.toml has no [tool.mutmut] section"
    return narrowed


def prepare(module: str, tests: list[str]) -> Path:
    """mutants/<module>/: the narrowed pyproject.toml, and links to what mutmut copies from here."""
    folder = folder_of(module)
    folder.mkdir(parents=True, exist_ok=True)
    settings = mutmut_settings()
    linked = [*settings["source_paths"], "tests", *settings["also_copy"]]  # type: ignore[misc]
    for name in linked:
        link = folder / str(name).rstrip("/")
        if not link.is_symlink():
            link.symlink_to(REPO / link.name)
    pyproject = folder / "pyproject.toml"
    text = narrowed_pyproject(module, tests)
    if not pyproject.is_file() or pyproject.read_text() != text:  # an unchanged file keeps mutmut's cache
        pyproject.write_text(text)
    return folder


def mutmut(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mutmut", *args], cwd=folder, text=True, capture_output=True, check=False
    )


def run(module: str, tests: list[str], jobs: int) -> None:
    folder = prepare(module, tests)
    print(f"== {module}: mutmut run in {folder.relative_to(REPO)}", flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs)], cwd=folder, check=False
    )
    if done.returncode != 0:
        sys.exit(f"mutmut run failed for {module} (exit {done.returncode})")


def figures(module: str) -> dict[str, int] | None:
    """mutmut's own counts for the module's last run, or None if it has not run."""
    folder = folder_of(module)
    if not (folder / "mutants").is_dir():
        return None
    exported = mutmut(folder, "export-cicd-stats")
    stats = folder / "mutants" / "mutmut-cicd-stats.json"
    if exported.returncode != 0 or not stats.is_file():
        return None
    return dict(json.loads(stats.read_text()))


def not_killed(module: str) -> list[tuple[str, str]]:
    """(mutant, status) of each mutant the tests did not kill."""
    listed = mutmut(folder_of(module), "results").stdout
    return [
        (name.strip(), status.strip())
        for name, _, status in (line.rpartition(": ") for line in listed.splitlines())
        if name.strip().startswith("maas.")
    ]


def report(modules: list[str]) -> bool:
    """Prints the table; True when every module that ran reaches the goal."""
    print(
        f"\n{'module':28} {'total':>6} {'killed':>7} {'timeout':>8} {'survived':>9} {'no tests':>9} {'ratio':>6}"
    )
    reached = True
    for module in modules:
        s = figures(module)
        if s is None:
            print(f"{module:28} (not run)")
            continue
        # A mutant that makes a test hang is one the tests noticed.
        detected = s["killed"] + s["timeout"]
        ratio = detected / s["total"] if s["total"] else 1.0
        reached &= ratio >= GOAL
        print(
            f"{module:28} {s['total']:>6} {s['killed']:>7} {s['timeout']:>8} {s['survived']:>9}"
            f" {s['no_tests']:>9} {ratio:>6.0%}" + ("" if ratio >= GOAL else f"  below {GOAL:.0%}")
        )
        for name, status in not_killed(module):
            if status != "timeout":
                print(f"    {status:10} {name}")
    return reached


def survivors(module: str) -> None:
    folder = folder_of(module)
    for name, status in not_killed(module):
        if status != "timeout":
            print(mutmut(folder, "show", name).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["run", "report", "survivors"])
    parser.add_argument("modules", nargs="*", help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    args = parser.parse_args()
    modules = [module.rstrip("/") for module in args.modules] or list(MODULES)
    unknown = sorted(set(modules) - set(MODULES))
    if unknown:
        parser.error(f"not a module mutation testing covers: {unknown}; choose from {list(MODULES)}")
    if args.command == "survivors":
        for module in modules:
            survivors(module)
        return
    if args.command == "run":
        for module in modules:
            run(module, MODULES[module], args.jobs)
    if not report(modules):
        sys.exit(1)


if __name__ == "__main__":
    main()
