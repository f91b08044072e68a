"""Assets built on this machine, no Docker: runtime layers with `layers/build.py`, and the
function code (a handler plus the `maas` package)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYER_BUILDS = REPO_ROOT / "layers" / "build"
# Never pulled: local bundling always succeeds or raises, so CDK never falls back to Docker.
NO_DOCKER = DockerImage.from_registry("maas-local-bundling-only")


@cache
def layer_builder() -> ModuleType:
    """layers/build.py, loaded from its file: it is a script of the repo, not a package."""
    spec = importlib.util.spec_from_file_location("maas_layer_build", REPO_ROOT / "layers" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import would: its dataclasses look themselves up there.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@jsii.implements(ILocalBundling)
class _CopyBuild:
    """Local bundling: copy a directory made on this machine into the asset."""

    def __init__(self, make: Any) -> None:
        self.make = make

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        for source, target in self.make():
            shutil.copytree(source, Path(output_dir) / target, dirs_exist_ok=True, ignore=_IGNORED)
        return True


_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".stamp")


def _asset(source: Path, make: Any) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(source),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(image=NO_DOCKER, local=_CopyBuild(make)),
    )


def layer_code(runtime: str, architecture: str) -> tuple[lambda_.Code, lambda_.Runtime]:
    """The layer of `runtime` for `architecture` (built once, then cached), and the Lambda
    Python runtime its wheels were chosen for."""
    builder = layer_builder()
    spec = builder.layer_spec(runtime, architecture)

    def make() -> list[tuple[Path, str]]:
        return [(builder.build_layer(spec, LAYER_BUILDS), ".")]

    # Lambda offers SnapStart on its Python 3.12 and later runtimes.
    snapstart = tuple(int(part) for part in spec.python.split(".")) >= (3, 12)
    python = lambda_.Runtime(
        builder.lambda_python_runtime(spec), lambda_.RuntimeFamily.PYTHON, supports_snap_start=snapstart
    )
    return _asset(REPO_ROOT / "layers", make), python


def function_code(function: str) -> lambda_.Code:
    """`functions/<function>/` with the `maas` package beside its handler."""
    source = REPO_ROOT / "functions" / function

    def make() -> list[tuple[Path, str]]:
        return [(source, "."), (REPO_ROOT / "maas", "maas")]

    return _asset(source, make)
