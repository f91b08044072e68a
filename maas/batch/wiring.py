"""The batch side of the predict function, assembled from its settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maas.batch.processor import BatchProcessor
from maas.batch.sqs import SqsBatchHandler

if TYPE_CHECKING:
    from maas.batch.split import Splitter
    from maas.dataplane import DataPlane
    from maas.settings import PredictSettings


def sqs_handler(dataplane: DataPlane, settings: PredictSettings) -> SqsBatchHandler:
    import boto3

    processor = BatchProcessor(dataplane, boto3.client("s3"), chunk_size=settings.batch_chunk_rows)
    return SqsBatchHandler(processor, settings.idempotency_table, splitter=_splitter(processor, settings))


def _splitter(processor: BatchProcessor, settings: PredictSettings) -> Splitter | None:
    """Splits large files when the function knows its queue and has a table to count parts in."""
    if not (settings.batch_queue_url and settings.idempotency_table):
        return None
    import boto3

    from maas.batch.progress import PartProgress
    from maas.batch.split import Splitter

    part_bytes = int(settings.batch_part_mb * 1024 * 1024) if settings.batch_part_mb else None
    return Splitter(
        processor,
        sqs=boto3.client("sqs"),
        queue_url=settings.batch_queue_url,
        progress=PartProgress(settings.idempotency_table, boto3.client("dynamodb")),
        part_bytes=part_bytes,
    )
