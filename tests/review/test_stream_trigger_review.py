"""Adversarial tests of maas.local.stream_trigger (the local DynamoDB stream event source mapping)
and of maas.control.events (the reconciler's Lambda event dispatch)."""

from __future__ import annotations

import threading
import time
from typing import Any

from maas.control.events import changed_alias, handle
from maas.control.reconciler import ReconcileFailed
from maas.local.stream_trigger import DynamoDBStreamTrigger


def record(seq: int, sk: str, pk: str = "M#m") -> dict[str, Any]:
    return {
        "eventID": str(seq),
        "eventName": "MODIFY",
        "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}, "SequenceNumber": str(seq)},
    }


class FakeStreams:
    """One shard holding `records`, handed out once."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.given = False

    def describe_table(self, TableName: str) -> Any:  # noqa: N803
        return {"Table": {"LatestStreamArn": "arn:stream"}}

    def describe_stream(self, StreamArn: str) -> Any:  # noqa: N803
        return {"StreamDescription": {"Shards": [{"ShardId": "s1"}]}}

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        return {"ShardIterator": "it"}

    def get_records(self, ShardIterator: str, Limit: int) -> Any:  # noqa: N803
        if self.given:
            return {"Records": [], "NextShardIterator": "it"}
        self.given = True
        return {"Records": self.records, "NextShardIterator": "it"}


def test_records_of_other_items_are_filtered_out() -> None:
    streams = FakeStreams(
        [record(1, "V#0000000001"), record(2, "A#prod"), record(3, "T#prod"), record(4, "A#prod", pk="N#m")]
    )
    seen: list[Any] = []
    trigger = DynamoDBStreamTrigger(
        streams,
        streams,
        "t",
        lambda event: seen.append(event) or {},
        accept=lambda r: changed_alias(r) is not None,
    )
    assert trigger.poll_once() == 1
    (event,) = seen
    assert [r["dynamodb"]["SequenceNumber"] for r in event["Records"]] == ["2"]


def test_a_crashing_function_is_retried_then_dead_lettered_from_the_failed_record() -> None:
    streams = FakeStreams([record(1, "A#a"), record(2, "A#b")])
    calls: list[list[str]] = []
    dead: list[list[dict[str, Any]]] = []

    def invoke(event: dict[str, Any]) -> Any:
        seqs = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        calls.append(seqs)
        return {"batchItemFailures": [{"itemIdentifier": "2"}]}

    trigger = DynamoDBStreamTrigger(
        streams, streams, "t", invoke, max_retries=2, retry_seconds=0.01, on_failure=dead.append
    )
    trigger.poll_once()
    assert calls == [["1", "2"], ["2"], ["2"]]
    assert [[r["dynamodb"]["SequenceNumber"] for r in batch] for batch in dead] == [["2"]]


def test_stop_while_a_failing_batch_waits_to_retry_does_not_dead_letter_it() -> None:
    """Found by the review, fixed: `_deliver` waits between retries on the stop event, so stop() makes the
    remaining retries run back to back and then sends the records to the dead-letter queue:
    stopping `maas dev` dead-letters an alias change that was only waiting for a retry."""
    streams = FakeStreams([record(1, "A#prod")])
    dead: list[Any] = []
    attempts: list[float] = []

    def invoke(event: dict[str, Any]) -> Any:
        attempts.append(time.monotonic())
        raise RuntimeError("the function crashed")

    trigger = DynamoDBStreamTrigger(
        streams,
        streams,
        "t",
        invoke,
        max_retries=3,
        retry_seconds=5,
        poll_seconds=0.05,
        on_failure=dead.append,
    )
    trigger.start()
    deadline = time.monotonic() + 5
    while not attempts and time.monotonic() < deadline:
        time.sleep(0.01)
    trigger.stop()
    assert dead == [], f"{len(attempts)} attempts, then dead-lettered on stop"


def test_stop_waits_for_a_slow_batch_to_finish() -> None:
    """stop() gives a batch in flight its `stop_timeout` to finish before it returns (maas dev
    then stops the worker under it; a step cut short after that is safe, the next one takes it up)."""
    streams = FakeStreams([record(1, "A#prod")])
    started = threading.Event()
    release = threading.Event()

    def invoke(event: dict[str, Any]) -> Any:
        started.set()
        release.wait(30)
        return {}

    trigger = DynamoDBStreamTrigger(streams, streams, "t", invoke, poll_seconds=0.05, stop_timeout=10)
    trigger.start()
    assert started.wait(5)
    threading.Timer(1.0, release.set).start()  # the batch ends a second after stop() is asked
    trigger.stop()
    assert release.is_set(), "stop() returned with the batch still in flight"
    assert not trigger._thread.is_alive()


class FakeReconciler:
    def __init__(self, fail: set[tuple[str, str]]) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str]] = []

    def reconcile(self, name: str, alias: str) -> None:
        self.calls.append((name, alias))
        if (name, alias) in self.fail:
            raise ReconcileFailed(f"{name}/{alias} failed")


def test_a_stream_batch_reports_failures_from_the_first_failed_record_and_dedupes() -> None:
    reconciler = FakeReconciler({("m", "b")})
    event = {"Records": [record(1, "A#a"), record(2, "A#a"), record(3, "A#b"), record(4, "A#c")]}
    answer = handle(reconciler, event)  # type: ignore[arg-type]
    assert reconciler.calls == [("m", "a"), ("m", "b")]
    assert answer == {"batchItemFailures": [{"itemIdentifier": "3"}, {"itemIdentifier": "4"}]}


def test_an_alias_named_with_a_hash_is_parsed_whole() -> None:
    assert changed_alias(record(1, "A#prod")) == ("m", "prod")
    assert changed_alias(record(1, "H#prod#0000000001")) is None
    assert changed_alias(record(1, "C#prod")) is None
