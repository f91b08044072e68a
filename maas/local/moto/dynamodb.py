"""moto's DynamoDB streams, as Lambda reads them."""

from __future__ import annotations

from typing import Any

from maas.local.moto.patching import replace


def _dynamodb_streams_reach_lambda_through_a_poller() -> None:
    """Gap: moto invokes a stream's Lambda mappings inside the write that made the record, so a
    function that reads the table back (the reconciler) waits on the write that waits on it.
    Here the record is only added to the stream; maas.local.stream_trigger.StreamMappings
    polls it and invokes the function afterwards, as AWS's stream pollers do."""
    from moto.dynamodb.models.table import StreamShard

    add = StreamShard.add

    def add_without_invoking(self: Any, old: Any, new: Any) -> None:
        mappings = self.table.lambda_event_source_mappings
        self.table.lambda_event_source_mappings = {}
        try:
            add(self, old, new)
        finally:
            self.table.lambda_event_source_mappings = mappings

    replace(StreamShard, "add", add_without_invoking)


def install() -> None:
    """Every extension of this service (idempotent)."""
    _dynamodb_streams_reach_lambda_through_a_poller()
