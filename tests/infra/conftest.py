"""The CDK app synthesized once per session for the template tests (layers are built on
first use and cached under layers/build/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template

REPO_ROOT = Path(__file__).resolve().parents[2]


def synth(config: Path, outdir: Path) -> Stack:
    from app import build_app

    app = build_app(config, outdir=str(outdir))
    app.synth()
    stacks = [child for child in app.node.children if isinstance(child, Stack)]
    assert len(stacks) == 1
    return stacks[0]


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="session")
def stack(cdk_out: Path) -> Stack:
    """The example maas.yaml, synthesized; cdk-nag fails the synth on any unacknowledged finding."""
    return synth(REPO_ROOT / "maas.yaml", cdk_out)


@pytest.fixture(scope="session")
def template(stack: Stack) -> Template:
    return Template.from_stack(stack)
