"""Uploads reaching the function through SQS: processed once, and a poison message ends in
the dead-letter queue while its neighbours succeed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from maas.batch import BatchProcessor
from maas.batch.sqs import SqsBatchHandler
from maas.dataplane import DataPlane
from maas.local.context import LocalLambdaContext
from maas.local.trigger import SqsTrigger, create_batch_queue
from maas.registry import Registry, RegistrySource

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


def notification(bucket: str, key: str, etag: str = "abc") -> str:
    return json.dumps(
        {
            "Records": [
                {"s3": {"bucket": {"name": bucket}, "object": {"key": key.replace(" ", "+"), "eTag": etag}}}
            ]
        }
    )


def test_the_same_object_delivered_twice_is_processed_once(
    wiring: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", wiring["endpoint"])
    wiring["s3"].put_object(
        Bucket=wiring["bucket"], Key="inputs/digits/my rows.jsonl", Body=json.dumps([0.0] * 64).encode()
    )
    body = notification(wiring["bucket"], "inputs/digits/my rows.jsonl")
    for message_id in ("first", "redelivered"):
        event = {
            "Records": [
                {
                    "messageId": message_id,
                    "receiptHandle": "r",
                    "body": body,
                    "attributes": {},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                }
            ]
        }
        assert wiring["handler"](event, LocalLambdaContext()) == {"batchItemFailures": []}
    assert CountingProcessor.runs == 1
    assert wiring["s3"].head_object(Bucket=wiring["bucket"], Key="outputs/digits/my rows.jsonl.manifest.json")


def test_a_poison_message_reaches_the_dead_letter_queue_and_its_neighbours_succeed(
    wiring: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", wiring["endpoint"])
    sqs, queue = wiring["sqs"], wiring["queue"]
    wiring["s3"].put_object(
        Bucket=wiring["bucket"], Key="inputs/digits/good.jsonl", Body=json.dumps([1.0] * 64).encode()
    )
    sqs.send_message(QueueUrl=queue, MessageBody=notification(wiring["bucket"], "inputs/digits/good.jsonl"))
    sqs.send_message(
        QueueUrl=queue, MessageBody=notification(wiring["bucket"], "inputs/no-such-model/x.jsonl")
    )
    trigger = SqsTrigger(sqs, queue, lambda event: wiring["handler"](event, LocalLambdaContext()))
    dead_letter = sqs.get_queue_url(QueueName=queue.rsplit("/", 1)[-1] + "-dlq")["QueueUrl"]
    for _ in range(20):
        trigger.poll_once(wait_seconds=2)
        dead = sqs.get_queue_attributes(QueueUrl=dead_letter, AttributeNames=["ApproximateNumberOfMessages"])
        if dead["Attributes"]["ApproximateNumberOfMessages"] == "1":
            break
    else:
        pytest.fail("the poison message never reached the dead-letter queue")
    moved = sqs.receive_message(QueueUrl=dead_letter, MaxNumberOfMessages=10)["Messages"]
    assert "no-such-model" in moved[0]["Body"]
    assert wiring["s3"].head_object(Bucket=wiring["bucket"], Key="outputs/digits/good.jsonl.manifest.json")
    left = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    assert left["Attributes"] == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
