"""Batch inference: one S3 object of inputs in, predictions and errors out."""

from maas.batch.processor import BatchProcessor, Manifest, split_key

__all__ = ["BatchProcessor", "Manifest", "split_key"]
