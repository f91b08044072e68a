"""An embedded AWS (moto's server on 127.0.0.1) and registries on it, for the functional tests."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from maas.registry import ArtifactStore, DynamoDBStore, InMemoryStore, Registry, table_definition


def aws_client(service: str, endpoint: str) -> Any:
    # Room for the 16 racing writers of the race tests.
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", config=Config(max_pool_connections=32)
    )


def make_registry(kind: str, endpoint: str) -> Registry:
    suffix = uuid.uuid4().hex[:8]
    s3 = aws_client("s3", endpoint)
    bucket = f"artifacts-{suffix}"
    s3.create_bucket(Bucket=bucket)
    if kind == "memory":
        store: Any = InMemoryStore()
    else:
        dynamodb = aws_client("dynamodb", endpoint)
        dynamodb.create_table(**table_definition(f"registry-{suffix}"))
        store = DynamoDBStore(f"registry-{suffix}", client=dynamodb)
    return Registry(store, ArtifactStore(bucket, client=s3), user="tester")


@pytest.fixture(params=["memory", "dynamodb"])
def registry(request: pytest.FixtureRequest, aws_endpoint: str) -> Registry:
    """The same contract, once in memory and once on DynamoDB (moto)."""
    return make_registry(request.param, aws_endpoint)


@pytest.fixture
def dynamo_registry(aws_endpoint: str) -> Registry:
    return make_registry("dynamodb", aws_endpoint)


@pytest.fixture(scope="session")
def artifacts(model_dir: Path) -> dict[str, Path]:
    return {
        "sum": model_dir / "sum" / "1" / "model.onnx",
        "digits": model_dir / "digits" / "1" / "model.onnx",
        "tflite": model_dir / "digits-tflite" / "1" / "model.tflite",
        "broken": model_dir / "broken" / "1" / "model.onnx",
    }
