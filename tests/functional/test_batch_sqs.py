"""Uploads reaching the function through SQS: processed once, and a poison message ends in
the dead-letter queue while its neighbours succeed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from maas.local.context import LocalLambdaContext
from maas.local.trigger import SqsTrigger
from tests.functional.conftest import CountingProcessor, notification


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
