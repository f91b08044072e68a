"""Batch files larger than one invocation can finish in its timeout, run as parts.

The notification of such a file is planned instead of processed: the file is cut into parts
(maas.batch.parts), the plan is written next to where its outputs go, and each part becomes
a message on the batch queue, which an invocation of its own processes (maas.batch.sqs
sends extra parts of one batch back to the queue). A part writes its own outputs and errors,
under `<file>.parts/<job>/`; the one that finishes last (maas.batch.progress) writes the
file's manifest, listing every part. Each part runs once: its idempotency key is the job
(bucket, key, object version or ETag, upload sequencer, model version) and its index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.batch.formats import format_of
from maas.batch.part_files import PartReplaced, process_part, write_plan, write_split_manifest
from maas.batch.parts import NPY_HEADER_BYTES, Layout, Part, line_parts, npy_layout, npy_parts, part_count
from maas.batch.progress import PartProgress
from maas.errors import BackendUnavailable

if TYPE_CHECKING:
    from maas.batch.processor import BatchProcessor

logger = logging.getLogger(__name__)

PART_MESSAGE = "maas_batch_part"
# What one invocation is planned to get through: bytes of JSON Lines per second, as measured
# for the digits model on the 2-core sandbox (BENCHMARKS.md: about 20 MB/s in
# bench/batch_throughput.py, 5-14 MB/s per part in bench/batch_split.py with two parts at once
# and the machine shared), taken at 5 MB/s for a 1 GB Lambda's share of a CPU and larger
# models; and half the function's timeout, the other half left for a slower model or S3.
MEASURED_BYTES_PER_SECOND = 5 * 1024 * 1024
TIMEOUT_SHARE = 0.5
# A part, its outputs and its errors are in /tmp at once: at most this share of it each.
TMP_SHARE = 0.3
MIN_PART_BYTES = 1024 * 1024
SCAN_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class PartJob:
    """What the message of one part carries: the file's job, and the part's range and layout."""

    bucket: str
    key: str
    version_id: str | None
    etag: str
    sequencer: str | None
    model_version: str
    job_id: str
    index: int
    parts: int
    start: int
    end: int
    first_row: int
    planned_at: float
    header_end: int = 0
    npy_dtype: str | None = None
    npy_row_shape: tuple[int, ...] = ()

    @property
    def layout(self) -> Layout:
        return Layout(self.header_end, self.npy_dtype, tuple(self.npy_row_shape))

    @property
    def rows(self) -> int:
        """The rows of a .npy part (its range holds whole rows)."""
        row_bytes = np.dtype(self.npy_dtype).itemsize * math.prod(self.npy_row_shape)
        return (self.end - self.start) // row_bytes

    def body(self) -> str:
        return json.dumps({PART_MESSAGE: asdict(self)})

    @classmethod
    def from_body(cls, body: str) -> PartJob | None:
        """The part a queue message names, or None for any other message (an S3 notification)."""
        if PART_MESSAGE not in body:
            return None
        try:
            fields = json.loads(body)[PART_MESSAGE]
            fields["npy_row_shape"] = tuple(fields.get("npy_row_shape", ()))
            return cls(**fields)
        except (ValueError, TypeError, KeyError):
            return None


def job_id(job: dict[str, Any]) -> str:
    """A short name for one run of one upload: the fields of its idempotency key, hashed."""
    fields = [
        str(job.get(name)) for name in ("bucket", "key", "version_id", "etag", "sequencer", "model_version")
    ]
    return hashlib.sha256("\n".join(fields).encode()).hexdigest()[:16]


def default_part_bytes(timeout_seconds: float, tmp_bytes: int) -> int:
    """The bytes one invocation of `timeout_seconds` is planned to get through, at most a share
    of /tmp (`tmp_bytes`), at least 1 MB."""
    by_time = int(timeout_seconds * TIMEOUT_SHARE * MEASURED_BYTES_PER_SECOND)
    return max(MIN_PART_BYTES, min(by_time, int(tmp_bytes * TMP_SHARE)))


class Splitter:
    """Plans files larger than a part and sends their parts to the batch queue; runs a part and,
    after the last one, writes the file's manifest."""

    def __init__(
        self,
        processor: BatchProcessor,
        *,
        sqs: Any,
        queue_url: str,
        progress: PartProgress,
        part_bytes: int | None = None,
    ) -> None:
        self.processor = processor
        self.sqs = sqs
        self.queue_url = queue_url
        self.progress = progress
        self.configured_part_bytes = part_bytes

    def part_bytes(self, timeout_seconds: float) -> int:
        """How large a part is: as configured (MAAS_BATCH_PART_MB), else what an invocation of
        `timeout_seconds` gets through."""
        if self.configured_part_bytes:
            return self.configured_part_bytes
        return default_part_bytes(timeout_seconds, shutil.disk_usage(tempfile.gettempdir()).total)

    def plan(self, job: dict[str, Any], timeout_seconds: float) -> list[PartJob] | None:
        """The parts of the file `job` names, sent to the queue; None when it runs whole (it fits
        in one part, or it cannot be cut: then its reading says what is wrong)."""
        suffix = format_of(job["key"])
        s3, bucket, key = self.processor.s3, job["bucket"], job["key"]
        version = {"VersionId": job["version_id"]} if job["version_id"] else {}
        size = int(s3.head_object(Bucket=bucket, Key=key, **version)["ContentLength"])
        part_bytes = self.part_bytes(timeout_seconds)
        if size <= part_bytes:
            return None
        if suffix == ".npy":
            head = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{NPY_HEADER_BYTES - 1}", **version)
            found = npy_layout(head["Body"].read())
            if found is None:
                return None
            offset, rows, layout = found
            parts = npy_parts(offset, rows, layout, part_bytes)
            if not parts or parts[-1].end > size:
                return None  # a truncated file: read whole, it fails with numpy's reason
        else:
            body = s3.get_object(Bucket=bucket, Key=key, **version)["Body"]
            parts, layout = line_parts(
                body.iter_chunks(SCAN_BLOCK), size, part_count(size, part_bytes), csv=suffix == ".csv"
            )
        if len(parts) < 2:
            return None
        jobs = self._part_jobs(job, parts, layout)
        write_plan(self.processor, jobs)
        self.progress.start(jobs[0].job_id, len(jobs))
        self.send([part.body() for part in jobs])
        logger.info("batch %s: %d bytes, split into %d parts", key, size, len(jobs))
        return jobs

    def _part_jobs(self, job: dict[str, Any], parts: list[Part], layout: Layout) -> list[PartJob]:
        planned_at, name = time.time(), job_id(job)
        return [
            PartJob(
                bucket=job["bucket"],
                key=job["key"],
                version_id=job["version_id"],
                etag=job["etag"],
                sequencer=job["sequencer"],
                model_version=job["model_version"],
                job_id=name,
                index=part.index,
                parts=len(parts),
                start=part.start,
                end=part.end,
                first_row=part.first_row,
                planned_at=planned_at,
                header_end=layout.header_end,
                npy_dtype=layout.npy_dtype,
                npy_row_shape=layout.npy_row_shape,
            )
            for part in parts
        ]

    def send(self, bodies: list[str]) -> None:
        """Puts `bodies` on the batch queue; BackendUnavailable if SQS refuses any (the caller's
        message is then retried, and its parts sent again: each still runs once)."""
        for start in range(0, len(bodies), 10):  # SendMessageBatch's most
            entries = [
                {"Id": str(number), "MessageBody": body}
                for number, body in enumerate(bodies[start : start + 10])
            ]
            answer = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if answer.get("Failed"):
                raise BackendUnavailable(f"the batch queue refused part messages: {answer['Failed'][0]}")

    def run_part(self, part: PartJob) -> dict[str, Any]:
        """Processes `part`; after the file's last part, writes the file's manifest. The part's counts."""
        try:
            result, ref = process_part(self.processor, part)
        except PartReplaced:
            logger.info("batch %s: a newer upload replaced this one; part %d not run", part.key, part.index)
            return {"part": part.index, "skipped": "replaced by a newer upload"}
        results = self.progress.finish(part.job_id, part.index, result)
        if results is None:
            return result
        if not self.processor.is_current(part.bucket, part.key, part.version_id, part.etag):
            logger.info("batch %s: a newer upload replaced this one; its manifest is not written", part.key)
            return result
        manifest = write_split_manifest(self.processor, part, results, ref)
        from maas.metrics.emf import batch_done

        batch_done(manifest.model, manifest.rows_in, manifest.rows_failed)
        return result
