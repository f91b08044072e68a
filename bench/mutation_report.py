"""Mutation testing of the modules that hold promises (`make mutate`): mutmut changes their code one
small edit at a time (a `<` for a `<=`, a dropped argument, a constant plus one) and runs the tests
that cover the module; a mutant no test notices is a promise the tests do not hold. Prints, per
module, how many mutants the tests killed; RELIABILITY.md records the figures.

    .venv/bin/python bench/mutation_report.py run [MODULE ...]     # mutate, test, then report
    .venv/bin/python bench/mutation_report.py report [MODULE ...]  # the figures of the last run
    .venv/bin/python bench/mutation_report.py retest [MODULE ...]  # only the survivors, with today's tests
    .venv/bin/python bench/mutation_report.py survivors MODULE     # the diff of each surviving mutant
    .venv/bin/python bench/mutation_report.py run --sample 400 MODULE  # a random sample of its mutants

A module with thousands of mutants (maas/registry: about 2,700, each running up to 150 tests
against the embedded AWS) takes most of a day on two cores; `--sample N` tests N mutants drawn
at random (seeded, so a rerun draws the same ones) and the report then gives the share killed
in the sample, with its 95% margin.

Each module runs in a folder of its own, mutants/<module>/, whose pyproject.toml is this project's
with [tool.mutmut] narrowed to the module and its tests: mutmut keeps its copy of the project and its
results in `mutants/` under where it runs, and one module's test selection changing would otherwise
throw away the results of the others. A second run only tests mutants of functions that changed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "mutants"
GOAL = 0.80
DETECTED = ("killed", "timeout")
NO_MUTANT = "maas.__no_such_mutant__"

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
        "tests/functional/test_batch_edges.py",
    ],
    "maas/runtimes/sagemaker.py": [
        "tests/functional/test_sagemaker.py",
        "tests/unit/test_sagemaker_runtime.py",
    ],
    "maas/metrics/exporter.py": [
        "tests/functional/test_exporter.py",
        "tests/unit/test_monitoring_examples.py",
        "tests/unit/test_exporter_edges.py",
    ],
    "maas/registry": [
        "tests/functional/test_registry.py",
        "tests/functional/test_registry_handler.py",
        "tests/functional/test_registry_races.py",
        "tests/functional/test_registry_source.py",
        "tests/functional/test_cli_models.py",
        "tests/functional/test_registry_audit.py",
        "tests/functional/test_registry_edges.py",
    ],
}


def module_pattern(module: str) -> str:
    """The only_mutate glob of a module: a file as it is, a package as everything under it."""
    return module if module.endswith(".py") else f"{module}/*"


def folder_of(module: str) -> Path:
    return WORK / module.removesuffix(".py").replace("/", ".")


def retest_folder_of(module: str) -> Path:
    return folder_of(module).with_name(folder_of(module).name + ".retest")


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


def prepare(module: str, tests: list[str], folder: Path | None = None) -> Path:
    """mutants/<module>/: the narrowed pyproject.toml, and links to what mutmut copies from here."""
    folder = folder or folder_of(module)
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


def mutmut_run(folder: Path, jobs: int, names: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *names], cwd=folder, check=False
    )
    if done.returncode != 0:
        sys.exit(f"mutmut run failed in {folder} (exit {done.returncode})")


def run(module: str, jobs: int, sample: int | None = None, seed: int = 15) -> None:
    folder = prepare(module, MODULES[module])
    shutil.rmtree(retest_folder_of(module), ignore_errors=True)  # superseded by this run
    sample_file = folder / "sample.json"
    if sample is None:
        sample_file.unlink(missing_ok=True)
        print(f"== {module}: mutmut run in {folder.relative_to(REPO)}", flush=True)
        mutmut_run(folder, jobs, [])
        return
    # mutmut has no command that only generates mutants and maps tests to functions; a run
    # filtered on a name no mutant has does both, then stops before testing any.
    generated = mutmut(folder, "run", "--max-children", str(jobs), NO_MUTANT)
    if "nothing matches" not in generated.stdout + generated.stderr:
        sys.exit(f"mutmut could not generate the mutants of {module}:\n{generated.stdout}{generated.stderr}")
    verdicts = statuses(folder)
    # The first N of one seeded shuffle: a larger sample later contains this one and adds to it.
    shuffled = sorted(verdicts)
    random.Random(seed).shuffle(shuffled)
    drawn = sorted(shuffled[:sample])
    sample_file.write_text(json.dumps(drawn, indent=1) + "\n")
    untested = [name for name in drawn if verdicts[name] == "not checked"]
    print(f"== {module}: {len(drawn)} of {len(verdicts)} mutants drawn, {len(untested)} to test", flush=True)
    if untested:
        mutmut_run(folder, jobs, untested)


def retest(module: str, jobs: int) -> None:
    """Tests again, with the module's tests as they are now, only the mutants the last run did not
    kill: a test added for a survivor is checked in minutes, not by a whole run. (A whole run would
    start over: mutmut forgets every result when the test selection changes.)"""
    names = [name for name, status in outcome(module).items() if status not in DETECTED]
    folder = prepare(module, MODULES[module], folder=retest_folder_of(module))
    print(f"== {module}: {len(names)} mutants again in {folder.relative_to(REPO)}", flush=True)
    if names:
        mutmut_run(folder, jobs, names)


def statuses(folder: Path) -> dict[str, str]:
    """mutmut's verdict on each mutant of the last run in `folder` ("killed", "survived", ...)."""
    if not (folder / "mutants").is_dir():
        return {}
    listed = mutmut(folder, "results", "--all", "true").stdout
    verdicts = (line.strip().rpartition(": ") for line in listed.splitlines())
    return {name: status for name, _, status in verdicts if name.startswith("maas.")}


def outcome(module: str) -> dict[str, str]:
    """Each mutant's verdict: the last run's, or the retest's where the retest killed it; only the
    drawn mutants' when the last run tested a sample."""
    verdicts = statuses(folder_of(module))
    for name, status in statuses(retest_folder_of(module)).items():
        if status in DETECTED and name in verdicts:
            verdicts[name] = status
    drawn = sampled(module)
    return {name: verdicts[name] for name in drawn if name in verdicts} if drawn else verdicts


def sampled(module: str) -> list[str]:
    sample_file = folder_of(module) / "sample.json"
    return list(json.loads(sample_file.read_text())) if sample_file.is_file() else []


def report(modules: list[str]) -> bool:
    """Prints the table and the mutants no test killed; True when every module that ran reaches the goal."""
    columns = ["total", "killed", "timeout", "survived", "no tests", "unchecked", "ratio"]
    print(f"\n{'module':28}" + "".join(f"{name:>10}" for name in columns))
    reached = True
    for module in modules:
        verdicts = outcome(module)
        if not verdicts:
            print(f"{module:28} (not run)")
            continue
        count = Counter(verdicts.values())
        checked = len(verdicts) - count["not checked"]
        # A mutant that makes a test hang is one the tests noticed.
        ratio = (count["killed"] + count["timeout"]) / checked if checked else 0.0
        reached &= ratio >= GOAL
        cells = [len(verdicts), count["killed"], count["timeout"], count["survived"], count["no tests"]]
        # A sample's share has a margin: 1.96 standard errors of a proportion (95%).
        margin = (
            f" ±{1.96 * math.sqrt(ratio * (1 - ratio) / checked):.0%}" if sampled(module) and checked else ""
        )
        print(
            f"{module:28}"
            + "".join(f"{cell:>10}" for cell in [*cells, count["not checked"]])
            + f"{ratio:>10.0%}{margin}"
            + (" (random sample)" if margin else "")
            + ("" if ratio >= GOAL else f"  below {GOAL:.0%}")
        )
        for name, status in verdicts.items():
            if status not in DETECTED and status != "not checked":
                print(f"    {status:10} {name}")
    return reached


def survivors(module: str) -> None:
    for name, status in outcome(module).items():
        if status not in DETECTED and status != "not checked":
            print(mutmut(folder_of(module), "show", name).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["run", "retest", "report", "survivors"])
    parser.add_argument("modules", nargs="*", help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    parser.add_argument(
        "--sample", type=int, default=None, help="run: test only this many mutants, drawn at random"
    )
    parser.add_argument("--seed", type=int, default=15, help="run --sample: the draw's seed")
    args = parser.parse_intermixed_args()
    modules = [module.rstrip("/") for module in args.modules] or list(MODULES)
    unknown = sorted(set(modules) - set(MODULES))
    if unknown:
        parser.error(f"not a module mutation testing covers: {unknown}; choose from {list(MODULES)}")
    if args.command == "survivors":
        for module in modules:
            survivors(module)
        return
    for module in modules:
        if args.command == "run":
            run(module, args.jobs, args.sample, args.seed)
        elif args.command == "retest":
            retest(module, args.jobs)
    if not report(modules):
        sys.exit(1)


if __name__ == "__main__":
    main()
