"""An embedded AWS (moto's server on 127.0.0.1) and registries on it, for the functional tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.config import Config

from maas.batch import BatchProcessor
from maas.batch.sqs import SqsBatchHandler
from maas.dataplane import DataPlane
from maas.local.trigger import create_batch_queue
from maas.registry import (
    ArtifactStore,
    DynamoDBStore,
    InMemoryStore,
    Registry,
    RegistrySource,
    table_definition,
)
from tests import fakes


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


@contextmanager
def reconciler_on_stream(registry: Registry, endpoint: str, *, prefix: str = "maas") -> Iterator[Any]:
    """The control plane's reconciler run by the registry table's stream, as in AWS and in
    `maas dev`: alias changes move SageMaker endpoints while this runs."""
    from maas.control import Reconciler
    from maas.control.events import changed_alias, handle
    from maas.local.stream_trigger import DynamoDBStreamTrigger
    from maas.sagemaker.endpoint import EndpointDeployer

    deployer = EndpointDeployer(
        registry,
        prefix=prefix,
        sagemaker=aws_client("sagemaker", endpoint),
        autoscaling=aws_client("application-autoscaling", endpoint),
    )
    reconciler = Reconciler(registry, deployer)
    trigger = DynamoDBStreamTrigger(
        aws_client("dynamodb", endpoint),
        aws_client("dynamodbstreams", endpoint),
        registry.store.table_name,  # type: ignore[attr-defined]
        lambda event: handle(reconciler, event),
        accept=lambda record: changed_alias(record) is not None,
        retry_seconds=0.2,
        poll_seconds=0.1,
        sweep_seconds=0.5,
    )
    trigger.start()
    try:
        yield trigger
    finally:
        trigger.stop()


@pytest.fixture(scope="session")
def artifacts(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Model files to register; `sum-v2` is `sum` with other bytes and answers (`a + b + 1`)."""
    return {
        "sum": model_dir / "sum" / "1" / "model.onnx",
        "sum-v2": fakes.sum_model(tmp_path_factory.mktemp("sum-v2") / "model.onnx", plus=1.0),
        "digits": model_dir / "digits" / "1" / "model.onnx",
        "tflite": model_dir / "digits-tflite" / "1" / "model.tflite",
        "broken": model_dir / "broken" / "1" / "model.onnx",
    }


MAX_RECEIVES = 2


class CountingProcessor(BatchProcessor):
    runs = 0

    def process(self, bucket: str, key: str, version_id: str | None = None, **options: Any) -> Any:
        CountingProcessor.runs += 1
        return super().process(bucket, key, version_id, **options)


@pytest.fixture
def wiring(
    dynamo_registry: Registry, artifacts: dict[str, Path], aws_endpoint: str, tmp_path: Path
) -> dict[str, Any]:
    dynamo_registry.register("digits", artifacts["digits"])
    dynamo_registry.promote("digits", "prod", 1)
    clients = {
        name: boto3.client(name, endpoint_url=aws_endpoint, region_name="us-east-1")
        for name in ("sqs", "dynamodb")
    }
    suffix = dynamo_registry.artifacts.bucket.split("-")[-1]
    queue, _ = create_batch_queue(
        clients["sqs"], f"batch-{suffix}", max_receives=MAX_RECEIVES, visibility_timeout=1
    )
    table = f"idempotency-{suffix}"
    clients["dynamodb"].create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    CountingProcessor.runs = 0
    plane = DataPlane(RegistrySource(dynamo_registry, cache_dir=tmp_path))
    processor = CountingProcessor(plane, dynamo_registry.artifacts.client)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", aws_endpoint)  # Powertools' idempotency client
        handler = SqsBatchHandler(processor, idempotency_table=table)
    return {
        "queue": queue,
        "sqs": clients["sqs"],
        "handler": handler,
        "bucket": dynamo_registry.artifacts.bucket,
        "s3": dynamo_registry.artifacts.client,
        "endpoint": aws_endpoint,
    }


def notification(
    bucket: str, key: str, *, etag: str, version_id: str | None = None, sequencer: str | None = None
) -> str:
    """The S3 event notification of one upload, as S3 sends it to SQS (key URL-encoded)."""
    obj: dict[str, Any] = {"key": key.replace(" ", "+"), "eTag": etag}
    if version_id:
        obj["versionId"] = version_id
    if sequencer:
        obj["sequencer"] = sequencer
    return json.dumps({"Records": [{"s3": {"bucket": {"name": bucket}, "object": obj}}]})


def upload(wiring: dict[str, Any], key: str, body: bytes) -> str:
    """Puts `body` at `key` and returns the notification S3 sends for that upload (its real ETag)."""
    put = wiring["s3"].put_object(Bucket=wiring["bucket"], Key=key, Body=body)
    return notification(wiring["bucket"], key, etag=put["ETag"].strip('"'), version_id=put.get("VersionId"))


def load_registry_handler(registry: Registry, endpoint: str, **environment: str) -> ModuleType:
    """functions/registry/handler.py loaded fresh (its cold start) over `registry`'s table and
    bucket on `endpoint`, with `environment` (e.g. MAAS_MAX_UPLOAD_MB) set while it loads."""
    from maas.local.gateway import load_handler_module
    from tests.conftest import REPO_ROOT

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        env.setenv("MAAS_REGISTRY_TABLE", registry.store.table_name)  # type: ignore[attr-defined]
        env.setenv("MAAS_ARTIFACT_BUCKET", registry.artifacts.bucket)
        for name, value in environment.items():
            env.setenv(name, value)
        return load_handler_module(REPO_ROOT / "functions" / "registry" / "handler.py")
