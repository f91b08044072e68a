"""S3 upload notifications arriving through SQS: one record per uploaded object, processed
once, with partial batch responses so that one bad message does not fail its neighbours.

A file that can never be processed as it is (an unknown model, a format maas does not
read, a SageMaker-target model) gets a `status: failed` manifest naming the reason, where
`maas batch submit` looks, and its message is done: retrying cannot help. A failure that may
pass (S3 or DynamoDB unavailable, a model that does not load yet) reports the record as a
failed item: SQS delivers it again and, after the queue's maximum receives, moves it to the
dead-letter queue. Row-level problems are not failures: they go to the errors file.

With a Splitter, a file larger than one part is planned instead (maas.batch.split): its parts
come back through the same queue as messages of their own, each run once and in an
invocation of its own (the other parts of a batch are sent back to the queue).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor as RecordProcessor
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response

from maas.batch.split import PartJob
from maas.errors import MaasError
from maas.metrics.emf import batch_done

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from maas.batch.processor import BatchProcessor
    from maas.batch.split import Splitter

logger = logging.getLogger(__name__)

# What makes two notifications the same job; each name is a field of the job s3_objects builds.
IDEMPOTENCY_KEY = "[bucket, key, version_id || etag, sequencer, model_version]"
# What makes two part messages the same part: the job (those same fields, hashed) and its index.
PART_IDEMPOTENCY_KEY = "[job_id, index]"
# The planned time of a part when Lambda's context tells none (a local call).
DEFAULT_TIMEOUT_SECONDS = 900.0


def s3_objects(body: str) -> list[dict[str, Any]]:
    """The objects an S3 event notification names (none for S3's test event)."""
    document = json.loads(body)
    objects = []
    for record in document.get("Records", []):
        s3 = record["s3"]
        objects.append(
            {
                "bucket": s3["bucket"]["name"],
                # S3 URL-encodes keys in notifications, spaces as '+'.
                "key": unquote_plus(s3["object"]["key"]),
                "version_id": s3["object"].get("versionId"),
                "etag": s3["object"].get("eTag", ""),
                # Unique per upload even when the bucket is not versioned and the bytes are
                # the same; a redelivered notification carries the same one.
                "sequencer": s3["object"].get("sequencer"),
            }
        )
    return objects


class SqsBatchHandler:
    """Processes the S3 objects named by an SQS event, each once if an idempotency table is set;
    with a `splitter`, files larger than a part run as parts, each once."""

    def __init__(
        self,
        processor: BatchProcessor,
        idempotency_table: str | None = None,
        splitter: Splitter | None = None,
    ) -> None:
        self.processor = processor
        self.splitter = splitter
        self._idempotency: Any = None
        self._timeout_seconds = DEFAULT_TIMEOUT_SECONDS
        self._process = (
            self._once(idempotency_table, self._run, "job", IDEMPOTENCY_KEY)
            if idempotency_table
            else self._run
        )
        self._process_part = (
            self._once(idempotency_table, self._run_part, "part", PART_IDEMPOTENCY_KEY)
            if idempotency_table
            else self._run_part
        )

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if self._idempotency is not None:
            # Lets an in-progress record expire with the invocation that took it.
            for config in self._idempotency:
                config.register_lambda_context(context)
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is not None:
            self._timeout_seconds = remaining() / 1000
        return process_partial_response(  # type: ignore[return-value]
            event=self._one_part_per_invocation(event),
            record_handler=self._record,
            processor=RecordProcessor(event_type=EventType.SQS),
            context=context,
        )

    def _one_part_per_invocation(self, event: dict[str, Any]) -> dict[str, Any]:
        # A part is planned to take most of an invocation: a second part in the same batch is
        # put back on the queue as a new message (its copy runs once all the same) for another
        # invocation, rather than run after the first, past the timeout.
        records = event.get("Records", [])
        parts = [record for record in records if PartJob.from_body(record.get("body", "")) is not None]
        if self.splitter is None or len(parts) < 2:
            return event
        extra = parts[1:]
        self.splitter.send([record["body"] for record in extra])
        logger.info("batch: %d more parts in this batch sent back to the queue", len(extra))
        return {**event, "Records": [record for record in records if not any(record is r for r in extra)]}

    def _record(self, record: SQSRecord) -> None:
        part = PartJob.from_body(record.body)
        if part is not None:
            self._part(part)
            return
        for job in s3_objects(record.body):
            if not self.processor.is_current(job["bucket"], job["key"], job["version_id"], job["etag"]):
                logger.info(
                    "batch %s: a newer upload replaced this one; its own notification runs it", job["key"]
                )
                continue
            try:
                # The model version is part of the key: the same file run again after a
                # promotion is a new job, not a repeat. Under a canary the draw is seeded by
                # the upload, so a redelivery draws the version the first delivery ran.
                draw_key = "/".join(
                    str(job[field]) for field in ("bucket", "key", "version_id", "etag", "sequencer")
                )
                job["model_version"] = self.processor.model_version(job["key"], draw_key)
                self._process(job=job)
            except MaasError as error:
                if error.status >= 500:
                    raise  # may pass: SQS delivers the message again, then to the DLQ
                # Not remembered as done: the same file uploaded again after a fix runs again.
                self.processor.record_failure(job["bucket"], job["key"], error.message, job["version_id"])

    def _part(self, part: PartJob) -> None:
        if not self.processor.is_current(part.bucket, part.key, part.version_id, part.etag):
            logger.info("batch %s: a newer upload replaced this one; part %d not run", part.key, part.index)
            return
        try:
            self._process_part(part=asdict(part))
        except MaasError as error:
            if error.status >= 500:
                raise
            # The model version the plan pinned can no longer run (retired, say): the file fails.
            reason = f"part {part.index + 1} of {part.parts} failed: {error.message}"
            self.processor.record_failure(part.bucket, part.key, reason, part.version_id)

    def _run_part(self, part: dict[str, Any]) -> dict[str, Any]:
        assert self.splitter is not None
        fields = {**part, "npy_row_shape": tuple(part.get("npy_row_shape", ()))}
        return self.splitter.run_part(PartJob(**fields))

    def _run(self, job: dict[str, Any]) -> dict[str, Any]:
        if self.splitter is not None:
            parts = self.splitter.plan(job, self._timeout_seconds)
            if parts is not None:
                return {"job_id": parts[0].job_id, "parts": len(parts)}
        manifest = self.processor.process(
            job["bucket"], job["key"], job["version_id"], model_version=job["model_version"]
        )
        batch_done(manifest.model, manifest.rows_in, manifest.rows_failed)
        return asdict(manifest)

    def _once(
        self, table: str, function: Callable[..., dict[str, Any]], argument: str, key: str
    ) -> Callable[..., dict[str, Any]]:
        # Keyed by bucket, key, object version (or ETag), the upload's sequencer and the model
        # version: a redelivered notification of the same upload finds the first run's result
        # and does nothing; new bytes, a new upload or a promotion make a new key. A part is
        # keyed by its job (the same fields, hashed) and its index.
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        persistence = DynamoDBPersistenceLayer(table_name=table)
        config = IdempotencyConfig(
            event_key_jmespath=key,
            expires_after_seconds=7 * 24 * 3600,
            # A key naming fields the job does not have would silently match every upload.
            raise_on_no_idempotency_key=True,
        )
        self._idempotency = [*(self._idempotency or []), config]
        return idempotent_function(  # type: ignore[no-any-return]
            function, data_keyword_argument=argument, persistence_store=persistence, config=config
        )
