"""The batch side of the predict function, assembled from its settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maas.batch.processor import BatchProcessor
from maas.batch.sqs import SqsBatchHandler

if TYPE_CHECKING:
    from maas.dataplane import DataPlane
    from maas.settings import PredictSettings


def sqs_handler(dataplane: DataPlane, settings: PredictSettings) -> SqsBatchHandler:
    import boto3

    processor = BatchProcessor(dataplane, boto3.client("s3"), chunk_size=settings.batch_chunk_rows)
    return SqsBatchHandler(processor, settings.idempotency_table)
