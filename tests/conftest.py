"""Shared fixtures: a model directory with the demo and fake models, a data plane, the handler."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# No test may reach AWS: fake credentials and a region, set before boto3 is imported anywhere.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_METRICS_NAMESPACE="MaaS",
    POWERTOOLS_METRICS_DISABLED="true",
)

from maas.dataplane import DataPlane
from maas.local.aws import EmbeddedAws
from maas.local.demo import ensure_demo_models
from maas.sources import DirectorySource
from tests import fakes

REPO_ROOT = Path(__file__).resolve().parents[1]
PREDICT_HANDLER = REPO_ROOT / "functions" / "predict" / "handler.py"


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """maas's embedded AWS (moto's server) on a free loopback port, stopped at the end of the session."""
    aws = EmbeddedAws()
    try:
        yield aws.start()
    finally:
        aws.stop()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """digits (ONNX int8), digits-tflite, and the fakes: sum (versions 1 and 2), identity, broken."""
    root = tmp_path_factory.mktemp("models")
    ensure_demo_models(root)
    fakes.sum_model(root / "sum" / "1" / "model.onnx")
    fakes.sum_model(root / "sum" / "2" / "model.onnx")
    fakes.identity_model(root / "identity" / "1" / "model.onnx")
    fakes.broken_model(root / "broken" / "1" / "model.onnx")
    return root


@pytest.fixture
def dataplane(model_dir: Path) -> DataPlane:
    return DataPlane(DirectorySource(model_dir))


@pytest.fixture(scope="session")
def digits_test_rows() -> tuple[object, object]:
    """The held-out digits the demo models never saw in training: (features, labels)."""
    from maas.local.demo import digits_split

    _, test_x, _, test_y = digits_split()
    return test_x, test_y
