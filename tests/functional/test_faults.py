"""Faults injected into the embedded AWS: nothing is lost and nothing is half written.

Failures are raised by hooks on the real boto3 clients (botocore's `before-parameter-build`),
so the code under test sees them where AWS would raise them, between moto and the caller."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from maas.dataplane import DataPlane
from maas.errors import ConflictError, ModelNotReady
from maas.local.context import LocalLambdaContext
from maas.local.trigger import SqsTrigger
from maas.protocol import InferenceRequest
from maas.registry import Registry, RegistrySource
from maas.registry.dynamodb import MAX_ATTEMPTS
from tests.functional.conftest import CountingProcessor, upload

ROWS = 300
BAD_ROWS = {7, 150, 299}  # 0-based numbers of rows with the wrong number of features


class Killed(BaseException):
    """The function's process dying: nothing after it runs, no exception handler sees it."""


def fail_once(client: Any, operation: str, matches: Any, error: BaseException, times: int = 1) -> list[str]:
    """Make the first `times` `operation` calls whose parameters satisfy `matches` raise `error`."""
    failed: list[str] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        if len(failed) < times and matches(params):
            failed.append(str(params.get("Key", "")))
            raise error

    client.meta.events.register(
        f"before-parameter-build.{client.meta.service_model.service_name}.{operation}", hook
    )
    return failed


def upload_rows(wiring: dict[str, Any], key: str) -> str:
    """Uploads ROWS rows (BAD_ROWS of them short) and returns the upload's notification."""
    lines = [json.dumps([0.0] * (63 if n in BAD_ROWS else 64)) for n in range(ROWS)]
    return upload(wiring, key, "\n".join(lines).encode())


def rows_in(wiring: dict[str, Any], key: str) -> list[int]:
    try:
        body = wiring["s3"].get_object(Bucket=wiring["bucket"], Key=key)["Body"].read().decode()
    except ClientError:
        return []
    return [json.loads(line)["row"] for line in body.splitlines() if line]


def assert_every_row_lands_once(wiring: dict[str, Any], name: str) -> None:
    outputs = rows_in(wiring, f"outputs/digits/{name}")
    errors = rows_in(wiring, f"errors/digits/{name}.errors.jsonl")
    assert len(outputs) == len(set(outputs)) and len(errors) == len(set(errors))
    assert not set(outputs) & set(errors)
    assert sorted(outputs + errors) == sorted({*outputs, *errors})
    assert len(outputs) + len(errors) == ROWS
    assert len(errors) == len(BAD_ROWS)
    manifest = json.loads(
        wiring["s3"]
        .get_object(Bucket=wiring["bucket"], Key=f"outputs/digits/{name}.manifest.json")["Body"]
        .read()
    )
    assert (manifest["rows_in"], manifest["rows_out"], manifest["rows_failed"]) == (ROWS, ROWS - 3, 3)


def sqs_event(body: str) -> dict[str, Any]:
    record = {
        "messageId": "m-1",
        "receiptHandle": "r",
        "body": body,
        "attributes": {},
        "eventSource": "aws:sqs",
    }
    return {"Records": [{**record, "messageAttributes": {}}]}


def test_an_s3_write_failing_mid_batch_is_retried_and_every_row_lands_once(
    wiring: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", wiring["endpoint"])
    uploaded = upload_rows(wiring, "inputs/digits/s3-fault.jsonl")
    # The outputs are written; then writing the errors file fails.
    failed = fail_once(
        wiring["s3"],
        "PutObject",
        lambda params: params["Key"].endswith(".errors.jsonl"),
        ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "PutObject"),
    )
    sqs, queue = wiring["sqs"], wiring["queue"]
    sqs.send_message(QueueUrl=queue, MessageBody=uploaded)
    trigger = SqsTrigger(sqs, queue, lambda event: wiring["handler"](event, LocalLambdaContext()))
    for _ in range(10):
        trigger.poll_once(wait_seconds=2)
        if CountingProcessor.runs >= 2:
            break
    assert failed == ["errors/digits/s3-fault.jsonl.errors.jsonl"]
    assert CountingProcessor.runs == 2  # the failed attempt, then its redelivery
    assert_every_row_lands_once(wiring, "s3-fault.jsonl")


def test_a_function_killed_mid_file_is_redone_whole_once_its_claim_expires(
    wiring: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", wiring["endpoint"])
    uploaded = upload_rows(wiring, "inputs/digits/killed.jsonl")
    # Killed after the outputs and errors are written, before the manifest that completes the file.
    fail_once(wiring["s3"], "PutObject", lambda params: params["Key"].endswith(".manifest.json"), Killed())
    event = sqs_event(uploaded)
    with pytest.raises(Killed):
        wiring["handler"](event, LocalLambdaContext(timeout_seconds=1))
    with pytest.raises(ClientError):
        wiring["s3"].head_object(Bucket=wiring["bucket"], Key="outputs/digits/killed.jsonl.manifest.json")
    # SQS redelivers once the visibility timeout passes; the dead invocation's idempotency
    # claim (INPROGRESS) expires with its Lambda timeout, so the redelivery may take the file.
    time.sleep(1.2)
    assert wiring["handler"](event, LocalLambdaContext()) == {"batchItemFailures": []}
    assert CountingProcessor.runs == 2
    assert_every_row_lands_once(wiring, "killed.jsonl")


def test_conditional_checks_failing_leave_no_half_written_version(
    dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    dynamodb = dynamo_registry.store.client  # type: ignore[attr-defined]
    cancelled = ClientError(
        {"Error": {"Code": "TransactionCanceledException", "Message": "injected"},
         "CancellationReasons": [{"Code": "ConditionalCheckFailed"}]},
        "TransactWriteItems",
    )  # fmt: skip
    # Every attempt loses its conditional check: the registration fails and writes nothing.
    failed = fail_once(dynamodb, "TransactWriteItems", lambda params: True, cancelled, times=MAX_ATTEMPTS)
    with pytest.raises(ConflictError, match=f"after {MAX_ATTEMPTS} attempts"):
        dynamo_registry.register("faulty", artifacts["sum"])
    assert len(failed) == MAX_ATTEMPTS
    assert dynamo_registry.store.head("faulty") is None
    # One lost check (a racing writer) is retried: version 1, whole, and the counter not skipped.
    fail_once(dynamodb, "TransactWriteItems", lambda params: True, cancelled)
    record = dynamo_registry.register("faulty", artifacts["sum"])
    assert record.version == 1
    assert [v.version for v in dynamo_registry.versions("faulty").items] == [1]
    assert dynamo_registry.register("faulty", artifacts["sum"]).version == 2


def test_an_artifact_upload_failing_leaves_no_version(
    dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    s3 = dynamo_registry.artifacts.client
    fail_once(
        s3,
        "PutObject",
        lambda params: True,
        ClientError({"Error": {"Code": "SlowDown", "Message": "injected"}}, "PutObject"),
    )
    with pytest.raises(Exception, match="injected"):
        dynamo_registry.register("unsent", artifacts["sum"])
    assert dynamo_registry.store.head("unsent") is None


def test_a_model_that_fails_to_load_answers_503_until_it_loads(
    dynamo_registry: Registry, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    record = dynamo_registry.register("flaky", artifacts["sum"])
    dynamo_registry.promote("flaky", "prod", 1)
    s3, bucket = dynamo_registry.artifacts.client, dynamo_registry.artifacts.bucket
    good = s3.get_object(Bucket=bucket, Key=record.artifact_key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=record.artifact_key, Body=b"truncated")
    plane = DataPlane(RegistrySource(dynamo_registry, cache_dir=tmp_path), retry_after=0.2)
    request = InferenceRequest.model_validate(
        {"inputs": [{"name": n, "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]} for n in ("a", "b")]}
    )
    for _ in range(3):
        with pytest.raises(ModelNotReady, match=r"model 'flaky' version '1' is not ready: .*sha256"):
            plane.infer("flaky", request)
    s3.put_object(Bucket=bucket, Key=record.artifact_key, Body=good)
    time.sleep(0.25)
    answer = plane.infer("flaky", request).response
    assert answer.outputs[0].data == [2.0, 4.0, 6.0]
