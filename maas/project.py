"""A maas project: the directory `maas init` makes, where `npx cdk synth`, `maas deploy` and
`maas dev --deploy` run maas's CDK app on the project's own `maas.yaml`.

The CDK app, the function code and the layer recipes live in maas's checkout (`infra/`,
`functions/`, `layers/`), beside the `maas` package of an editable install; a project's
`cdk.json` runs that app with this Python, by absolute paths, so nothing is copied and an
update of the checkout is the project's next deploy.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from maas.errors import ConfigError

CHECKOUT = Path(__file__).resolve().parents[1]

GITIGNORE = """\
# Written by `maas init`.
node_modules/
cdk.out/
.maas/
__pycache__/
"""

MODELS_README = """\
# models/

Your model files, one folder per name and version: `models/<name>/<version>/model.onnx`
(or `model.tflite`). The names are those of `models:` in `../maas.yaml`.

- `maas dev --models models` serves them on this machine.
- `maas models register <name> models/<name>/<version>/model.onnx` puts one in the deployed
  registry (with `--table`/`--bucket` from the stack's outputs); `maas models promote`
  points an alias at it.
"""


@dataclass(frozen=True)
class InitResult:
    directory: Path
    files: list[str]
    cdk_version: str


def cdk_app(checkout: Path) -> Path:
    """The CDK app of maas's checkout; ConfigError when this maas has none beside it (a
    wheel install carries only the package)."""
    app = checkout / "infra" / "app.py"
    if not app.is_file() or not (checkout / "functions").is_dir():
        raise ConfigError(
            f"maas at {checkout} has no CDK app beside it ({app} is missing): install maas from "
            "its checkout (pip install -e <checkout>) to make a project that deploys"
        )
    return app


def init_project(directory: Path, *, force: bool = False) -> InitResult:
    """Write a project into `directory` (made if missing): maas.yaml, cdk.json, package.json
    and its lock, .gitignore and models/. Raises ConfigError naming the files that exist,
    unless `force`; then nothing is written."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is a file, not a directory to make a project in")
    files = _project_files(directory, CHECKOUT)
    existing = [name for name in files if (directory / name).exists()]
    if existing and not force:
        raise ConfigError(
            f"not overwriting what {directory} already has: {', '.join(existing)} "
            "(pass --force to replace them)"
        )
    for name, text in files.items():
        path = directory / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError as error:
            raise ConfigError(f"cannot write {path}: {error.strerror}") from None
    package = json.loads(files["package.json"])
    return InitResult(directory, list(files), package["devDependencies"]["aws-cdk"])


def _project_files(directory: Path, checkout: Path) -> dict[str, str]:
    from maas.config import EXAMPLE

    app = cdk_app(checkout)
    package, lock = _package_files(_package_name(directory.resolve().name), checkout)
    cdk_json = {
        # This Python (it has maas and the CDK libraries) runs the checkout's app.
        "app": f"{shlex.quote(sys.executable)} {shlex.quote(str(app))}",
        # Relative to where cdk runs, the project; `-c config=PATH` still wins.
        "context": {"config": "maas.yaml"},
        "watch": {"include": ["maas.yaml"]},
    }
    return {
        "maas.yaml": EXAMPLE,
        "cdk.json": json.dumps(cdk_json, indent=2) + "\n",
        "package.json": package,
        "package-lock.json": lock,
        ".gitignore": GITIGNORE,
        "models/README.md": MODELS_README,
    }


def _package_name(name: str) -> str:
    # npm names are lower case and URL-safe.
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "maas-project"


def _package_files(name: str, checkout: Path) -> tuple[str, str]:
    """package.json and package-lock.json pinning the checkout's CDK CLI (same version and
    integrity), so that `npm ci` installs exactly what maas is tested with."""
    try:
        pinned = json.loads((checkout / "package.json").read_text())["devDependencies"]["aws-cdk"]
        lock = json.loads((checkout / "package-lock.json").read_text())
    except (OSError, KeyError, ValueError) as error:
        raise ConfigError(f"cannot read the CDK CLI's pin in {checkout}/package.json: {error}") from None
    package = {
        "name": name,
        "private": True,
        "description": "The AWS CDK CLI that deploys this maas project (written by `maas init`).",
        "scripts": {"cdk": "cdk"},
        "devDependencies": {"aws-cdk": pinned},
    }
    lock["name"] = name
    lock["packages"][""] = {"name": name, "devDependencies": {"aws-cdk": pinned}}
    return json.dumps(package, indent=2) + "\n", json.dumps(lock, indent=2) + "\n"


def cdk_cli(project: Path) -> list[str]:
    """The command that runs the CDK CLI for `project`: its own node_modules/.bin/cdk, else
    maas's checkout's. ConfigError saying what is missing: cdk.json, the CLI, or Node.js."""
    checkout = CHECKOUT
    if not (project / "cdk.json").is_file():
        raise ConfigError(
            f"{project} has no cdk.json: run this in a project made by `maas init` "
            "(or `maas init` here first)"
        )
    candidates = [project / "node_modules" / ".bin" / "cdk", checkout / "node_modules" / ".bin" / "cdk"]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise ConfigError(
            "no CDK CLI: neither " + " nor ".join(str(path) for path in candidates) + " exists; "
            f"run `npm install` in {project} (its package.json pins the CLI), or `make setup` in {checkout}"
        )
    if shutil.which("node") is None:
        raise ConfigError(f"the CDK CLI ({found}) needs Node.js 18 or later: no `node` on the PATH")
    return [str(found)]


def project_for_dev() -> Path:
    """The project `maas dev --deploy` deploys: the current directory when it has a cdk.json
    (a `maas init` project), else maas's own checkout (its example stack)."""
    here = Path.cwd()
    return here if (here / "cdk.json").is_file() else CHECKOUT


def next_steps(result: InitResult) -> str:
    """What `maas init` prints: what it wrote, and the commands to run next, in order."""
    maas = _maas_command()
    steps = [
        ("edit maas.yaml", "your models (name, runtime), the region, who may call the API"),
        ("npm install", f"the CDK CLI, aws-cdk {result.cdk_version} (package-lock.json)"),
        (f"{maas} dev --deploy", "deploy it to an embedded AWS on this machine, serve it"),
        ("npx cdk synth", "or only synthesize: templates in cdk.out/, no credentials needed"),
        (f"{maas} deploy", "deploy it to AWS with your credentials"),
    ]
    if importlib.util.find_spec("aws_cdk") is None:
        # cdk.json runs the app with this Python: without the CDK libraries every synth fails.
        steps.insert(
            0, (f"{shlex.quote(sys.executable)} -m pip install -e '{CHECKOUT}[infra]'", "the CDK libraries")
        )
    if result.directory.resolve() != Path.cwd().resolve():
        steps.insert(0, (f"cd {shlex.quote(str(result.directory))}", ""))
    width = max(len(command) for command, _ in steps)
    lines = [f"maas init: wrote a maas project in {result.directory}: {', '.join(result.files)}", "next:"]
    lines += [f"  {command:<{width}}  # {why}".rstrip(" #") for command, why in steps]
    return "\n".join(lines)


def _maas_command() -> str:
    """`maas` when the PATH finds this one, else its full path (a venv not activated)."""
    beside = Path(sys.executable).parent / "maas"
    on_path = shutil.which("maas")
    if not beside.is_file() or (on_path is not None and Path(on_path).resolve() == beside.resolve()):
        return "maas"
    return str(beside)
