"""The local stand-in for Lambda's DynamoDB stream event source mapping, and for the
EventBridge schedule beside it: read every shard of a table's stream from its trim
horizon, call the function with the records a filter accepts, retry a failed batch from
the first record the function reports (ReportBatchItemFailures) up to `max_retries`
times, then send what is left to the dead-letter queue and go on, as Lambda does."""

from __future__ import annotations

import json
import logging
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)


class DynamoDBStreamTrigger:
    """Polls the stream of `table` in a background thread; every `sweep_seconds` it also
    calls the function with a scheduled event (`{"source": "maas.sweep"}`)."""

    def __init__(
        self,
        dynamodb: Any,
        streams: Any,
        table: str | None,
        invoke: Callable[[dict[str, Any]], Any],
        *,
        stream_arn: str | None = None,
        accept: Callable[[dict[str, Any]], bool] = lambda record: True,
        batch_size: int = 100,
        max_retries: int = 3,
        retry_seconds: float = 1.0,
        poll_seconds: float = 0.25,
        sweep_seconds: float | None = None,
        sweep_when: Callable[[], bool] = lambda: True,
        on_failure: Callable[[list[dict[str, Any]]], None] | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        self.streams = streams
        self.invoke = invoke
        self.accept = accept
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.retry_seconds = retry_seconds
        self.poll_seconds = poll_seconds
        self.sweep_seconds = sweep_seconds
        self.sweep_when = sweep_when
        self.stop_timeout = stop_timeout
        self.on_failure = on_failure or (lambda records: None)
        self.stream_arn = stream_arn or dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self._iterators: dict[str, str | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="maas-stream-trigger", daemon=True)
        self._next_sweep = time.monotonic() + (sweep_seconds or 0)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop polling: a batch in flight is given `stop_timeout` seconds to finish (a step cut
        short is safe: the next one takes it up), and one waiting to be retried is left on the
        stream, not dead-lettered."""
        self._stop.set()
        self._thread.join(timeout=self.stop_timeout)

    def poll_once(self) -> int:
        """Read each shard once and deliver what it had; returns how many records were delivered."""
        delivered = 0
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self._iterators[shard_id]
            if iterator is None:
                continue  # a closed shard, read to its end
            answer = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
            self._iterators[shard_id] = answer.get("NextShardIterator")
            records = [self._record(record) for record in answer.get("Records", [])]
            records = [record for record in records if self.accept(record)]
            if records:
                self._deliver(records)
                delivered += len(records)
        return delivered

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        for attempt in range(self.max_retries + 1):
            try:
                result = self.invoke({"Records": records}) or {}
                failed = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
            except Exception:
                logger.exception("the stream function failed; the whole batch is retried")
                failed = [records[0]["dynamodb"]["SequenceNumber"]]
            if not failed:
                return
            first = next((i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] in failed), 0)
            records = records[first:]
            if attempt < self.max_retries and self._stop.wait(self.retry_seconds * (attempt + 1)):
                return  # stopping: the records stay unprocessed, as a stopped poller leaves them
        logger.error(
            "%d stream record(s) failed %d times; sent to the dead-letter queue",
            len(records),
            self.max_retries + 1,
        )
        self.on_failure(records)

    def _sweep_if_due(self) -> None:
        if self.sweep_seconds is None or time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + self.sweep_seconds
        try:
            if not self.sweep_when():
                return
            self.invoke({"source": "maas.sweep", "detail-type": "Scheduled Event", "detail": {}})
        except Exception:
            logger.exception("the scheduled sweep failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.poll_once():
                    self._sweep_if_due()
                    self._stop.wait(self.poll_seconds)
            except Exception:  # the trigger must outlive a bad poll, as Lambda's does
                logger.exception("polling the stream %s failed", self.stream_arn)
                self._stop.wait(1)

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        # What Lambda hands the function: the stream record with its source named.
        data = dict(record.get("dynamodb", {}))
        data.pop("ApproximateCreationDateTime", None)  # a datetime from boto3, not JSON
        return {
            "eventID": record.get("eventID"),
            "eventName": record.get("eventName"),
            "eventSource": "aws:dynamodb",
            "eventSourceARN": self.stream_arn,
            "awsRegion": record.get("awsRegion", "us-east-1"),
            "dynamodb": data,
        }


def dead_letter_queue(sqs: Any, queue_url: str) -> Callable[[list[dict[str, Any]]], None]:
    """An on-failure destination: one SQS message naming the records that kept failing."""

    def send(records: list[dict[str, Any]]) -> None:
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps({"records": [r["dynamodb"] for r in records]}, default=str),
        )

    return send


class StreamMappings:
    """Lambda's event source mappings on DynamoDB streams, in the embedded AWS: every mapping
    a deployment creates (`cdk deploy`) gets a DynamoDBStreamTrigger that invokes its function
    through the embedded Lambda, as AWS's pollers do; moto's own delivery, inside the write
    that made the record, is turned off (maas.local.moto.dynamodb)."""

    def __init__(self, endpoint: str, *, poll_seconds: float = 1.0) -> None:
        self.endpoint = endpoint
        self.poll_seconds = poll_seconds
        self._triggers: dict[str, DynamoDBStreamTrigger] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="maas-stream-mappings", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for trigger in self._triggers.values():
            trigger.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self._start_new_mappings()
            except Exception:
                logger.exception("listing the event source mappings failed")

    def _start_new_mappings(self) -> None:
        for region in _regions_with_functions():
            lambda_client = _regional(self, "lambda", region)
            for mapping in lambda_client.list_event_source_mappings().get("EventSourceMappings", []):
                source = mapping.get("EventSourceArn", "")
                if ":dynamodb:" not in source or mapping["UUID"] in self._triggers:
                    continue
                function = mapping["FunctionArn"]
                trigger = DynamoDBStreamTrigger(
                    None,
                    _regional(self, "dynamodbstreams", region),
                    None,
                    partial(_invoke, lambda_client, function),
                    stream_arn=source,
                    batch_size=int(mapping.get("BatchSize") or 100),
                    max_retries=int(mapping.get("MaximumRetryAttempts") or 3),
                )
                self._triggers[mapping["UUID"]] = trigger
                trigger.start()
                logger.info("stream %s -> function %s", source, function)


def _regions_with_functions() -> list[str]:
    from moto.awslambda.models import lambda_backends

    regions = {region for account in lambda_backends.values() for region in account}
    return sorted(regions) or ["us-east-1"]


def _regional(mappings: StreamMappings, service: str, region: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=mappings.endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _invoke(client: Any, function: str, event: dict[str, Any]) -> Any:
    answer = client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
    payload = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        raise RuntimeError(f"function {function} failed: {payload}")
    return payload
