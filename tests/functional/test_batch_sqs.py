"""Uploads reaching the function through SQS: each upload processed once, a new upload or a
promotion processed again, a file that can never run reported where its submitter looks, and a
message that may yet succeed retried into the dead-letter queue while its neighbours succeed."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maas.batch.sqs import IDEMPOTENCY_KEY, s3_objects
from maas.local.context import LocalLambdaContext
from maas.local.trigger import SqsTrigger
from maas.registry import Registry
from tests.functional.conftest import CountingProcessor, notification, upload

KEY = "inputs/digits/my rows.jsonl"
MANIFEST = "outputs/digits/my rows.jsonl.manifest.json"


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{number}",
                "receiptHandle": "r",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            }
            for number, body in enumerate(bodies)
        ]
    }


def rows(count: int) -> bytes:
    return "\n".join(json.dumps([float(n % 17)] * 64) for n in range(count)).encode()


def deliver(wiring: dict[str, Any], body: str) -> None:
    assert wiring["handler"](sqs_event(body), LocalLambdaContext()) == {"batchItemFailures": []}


def manifest_of(wiring: dict[str, Any], key: str = MANIFEST) -> dict[str, Any]:
    return json.loads(wiring["s3"].get_object(Bucket=wiring["bucket"], Key=key)["Body"].read())


@pytest.fixture
def aws_env(wiring: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", wiring["endpoint"])  # Powertools' idempotency client
    return wiring


def test_a_redelivered_notification_of_the_same_upload_is_processed_once(aws_env: dict[str, Any]) -> None:
    uploaded = upload(aws_env, KEY, rows(3))
    deliver(aws_env, uploaded)
    deliver(aws_env, uploaded)
    assert CountingProcessor.runs == 1
    assert manifest_of(aws_env)["rows_in"] == 3


def test_the_same_key_uploaded_again_with_new_content_is_processed_again(aws_env: dict[str, Any]) -> None:
    deliver(aws_env, upload(aws_env, KEY, rows(3)))
    deliver(aws_env, upload(aws_env, KEY, rows(5)))
    assert CountingProcessor.runs == 2
    assert manifest_of(aws_env)["rows_in"] == 5  # the new file's rows, not the first one's


def test_the_same_bytes_uploaded_again_to_a_versioned_bucket_are_processed_again(
    aws_env: dict[str, Any],
) -> None:
    # The stack's bucket is versioned: each upload of the same bytes has its own versionId.
    aws_env["s3"].put_bucket_versioning(
        Bucket=aws_env["bucket"], VersioningConfiguration={"Status": "Enabled"}
    )
    first = upload(aws_env, KEY, rows(3))
    deliver(aws_env, first)
    again = upload(aws_env, KEY, rows(3))
    assert (
        json.loads(first)["Records"][0]["s3"]["object"]["eTag"]
        == json.loads(again)["Records"][0]["s3"]["object"]["eTag"]
    )
    deliver(aws_env, again)
    deliver(aws_env, again)  # redelivered
    assert CountingProcessor.runs == 2


def test_the_same_bytes_uploaded_again_to_any_bucket_are_told_apart_by_the_event_sequencer(
    aws_env: dict[str, Any],
) -> None:
    etag = json.loads(upload(aws_env, KEY, rows(3)))["Records"][0]["s3"]["object"]["eTag"]
    first = notification(aws_env["bucket"], KEY, etag=etag, sequencer="0055AED6DCD90281E5")
    again = notification(aws_env["bucket"], KEY, etag=etag, sequencer="0055AED6DCD90281E6")
    for body in (first, again, again):
        deliver(aws_env, body)
    assert CountingProcessor.runs == 2


def test_the_same_file_after_a_promotion_is_processed_again_by_the_new_version(
    aws_env: dict[str, Any], dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    uploaded = upload(aws_env, KEY, rows(3))
    deliver(aws_env, uploaded)
    assert manifest_of(aws_env)["version"] == "1"
    dynamo_registry.register("digits", artifacts["tflite"])
    dynamo_registry.promote("digits", "prod", 2)
    aws_env["handler"].processor.dataplane.source.ttl = 0  # the function's alias TTL has passed
    deliver(aws_env, uploaded)
    assert CountingProcessor.runs == 2
    assert manifest_of(aws_env)["version"] == "2"


def test_a_redelivery_under_a_canary_draws_the_version_the_first_delivery_ran(
    aws_env: dict[str, Any], dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    dynamo_registry.register("digits", artifacts["tflite"])
    dynamo_registry.canary("digits", "prod", {1: 50, 2: 50})
    aws_env["handler"].processor.dataplane.source.ttl = 0
    uploaded = upload(aws_env, KEY, rows(3))
    for _ in range(8):
        deliver(aws_env, uploaded)
    assert CountingProcessor.runs == 1
    # Other uploads still spread over both arms.
    versions = {manifest_of(aws_env)["version"]}
    for count in range(2, 14):
        deliver(aws_env, upload(aws_env, KEY, rows(count)))
        versions.add(manifest_of(aws_env)["version"])
    assert versions == {"1", "2"}


def test_a_late_notification_of_an_older_upload_does_not_overwrite_the_newer_ones_outputs(
    aws_env: dict[str, Any],
) -> None:
    aws_env["s3"].put_bucket_versioning(
        Bucket=aws_env["bucket"], VersioningConfiguration={"Status": "Enabled"}
    )
    older = upload(aws_env, KEY, rows(3))
    newer = upload(aws_env, KEY, rows(10))
    deliver(aws_env, newer)
    deliver(aws_env, older)  # retried by SQS after the newer upload ran
    assert CountingProcessor.runs == 1
    assert manifest_of(aws_env)["rows_in"] == 10


def test_every_name_in_the_idempotency_key_is_a_field_of_the_job() -> None:
    # The key once named `version`, which jobs never had, so only bucket and key counted.
    job = s3_objects(notification("b", "inputs/digits/x.jsonl", etag="e"))[0]
    job["model_version"] = "1"
    names = set(re.findall(r"[a-z_]+", IDEMPOTENCY_KEY))
    assert names <= set(job), names - set(job)
    assert {"bucket", "key", "version_id", "etag", "sequencer", "model_version"} <= names


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("inputs/no-such-model/x.jsonl", "model 'no-such-model' not found"),
        ("inputs/large/x.jsonl", "targets sagemaker; batch files for SageMaker endpoints are not supported"),
        ("inputs/digits/x.parquet", "is not a batch file maas reads"),
        ("inputs/digits/zero-d.npy", "holds a single value (shape ())"),
    ],
    ids=["unknown-model", "sagemaker-model", "unknown-format", "0-d-npy"],
)
def test_a_file_that_can_never_run_gets_a_failed_manifest_and_is_not_retried(
    aws_env: dict[str, Any], dynamo_registry: Registry, artifacts: dict[str, Path], key: str, reason: str
) -> None:
    dynamo_registry.register("large", artifacts["sum"], target="sagemaker")
    dynamo_registry.promote("large", "prod", 1)
    if key.endswith(".npy"):
        buffer = io.BytesIO()
        np.save(buffer, np.float32(1.0))  # one value, not an array of rows
        body = buffer.getvalue()
    else:
        body = rows(1)
    deliver(aws_env, upload(aws_env, key, body))
    manifest_key = "outputs/" + key[len("inputs/") :].replace(".npy", ".npz") + ".manifest.json"
    manifest = manifest_of(aws_env, manifest_key)
    assert manifest["status"] == "failed"
    assert reason in manifest["reason"]
    assert (manifest["input"], manifest["rows_in"], manifest["output"]) == (key, 0, None)


def test_a_file_that_failed_runs_when_uploaded_again_after_the_fix(
    aws_env: dict[str, Any], dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    key = "inputs/later/rows.jsonl"
    failed = upload(aws_env, key, json.dumps([1.0, 2.0, 3.0]).encode())
    deliver(aws_env, failed)
    assert manifest_of(aws_env, "outputs/later/rows.jsonl.manifest.json")["status"] == "failed"
    dynamo_registry.register("later", artifacts["digits"])
    dynamo_registry.promote("later", "prod", 1)
    deliver(aws_env, upload(aws_env, key, rows(2)))
    manifest = manifest_of(aws_env, "outputs/later/rows.jsonl.manifest.json")
    assert (manifest["status"], manifest["rows_out"]) == ("succeeded", 2)


def test_a_message_that_may_yet_succeed_reaches_the_dead_letter_queue_and_its_neighbours_succeed(
    aws_env: dict[str, Any],
) -> None:
    sqs, queue = aws_env["sqs"], aws_env["queue"]
    sqs.send_message(QueueUrl=queue, MessageBody=upload(aws_env, "inputs/digits/good.jsonl", rows(1)))
    # Named by a notification but gone from S3: reading it fails, which a retry may mend.
    sqs.send_message(
        QueueUrl=queue, MessageBody=notification(aws_env["bucket"], "inputs/digits/vanished.jsonl", etag="e")
    )
    trigger = SqsTrigger(sqs, queue, lambda event: aws_env["handler"](event, LocalLambdaContext()))
    dead_letter = sqs.get_queue_url(QueueName=queue.rsplit("/", 1)[-1] + "-dlq")["QueueUrl"]
    for _ in range(20):
        trigger.poll_once(wait_seconds=2)
        dead = sqs.get_queue_attributes(QueueUrl=dead_letter, AttributeNames=["ApproximateNumberOfMessages"])
        if dead["Attributes"]["ApproximateNumberOfMessages"] == "1":
            break
    else:
        pytest.fail("the failing message never reached the dead-letter queue")
    moved = sqs.receive_message(QueueUrl=dead_letter, MaxNumberOfMessages=10)["Messages"]
    assert "vanished" in moved[0]["Body"]
    assert manifest_of(aws_env, "outputs/digits/good.jsonl.manifest.json")["rows_out"] == 1
    left = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    assert left["Attributes"] == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
