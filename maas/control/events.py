"""The reconciler's events, as Lambda delivers them: the registry table's stream (an alias
changed), SageMaker's endpoint state changes through EventBridge (an update finished or
failed), and a schedule (a sweep, in case an event was lost)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from maas.control.reconciler import ReconcileFailed

if TYPE_CHECKING:
    from maas.control.reconciler import Reconciler

logger = logging.getLogger(__name__)

ALIAS_ITEM = "A#"
MODEL_PARTITION = "M#"


def changed_alias(record: dict[str, Any]) -> tuple[str, str] | None:
    """(model, alias) of a stream record of an alias item; None for any other item."""
    keys = record.get("dynamodb", {}).get("Keys", {})
    partition, sort = keys.get("pk", {}).get("S", ""), keys.get("sk", {}).get("S", "")
    if not (partition.startswith(MODEL_PARTITION) and sort.startswith(ALIAS_ITEM)):
        return None
    return partition[len(MODEL_PARTITION) :], sort[len(ALIAS_ITEM) :]


def handle(reconciler: Reconciler, event: dict[str, Any]) -> dict[str, Any]:
    """Run the reconciler for `event`. For a stream batch, returns the records to retry
    (ReportBatchItemFailures: from the first that failed on, as Lambda then retries)."""
    if "Records" in event:
        return _stream(reconciler, event["Records"])
    if event.get("detail-type") == "SageMaker Endpoint State Change":
        endpoint = event.get("detail", {}).get("EndpointName")
        if endpoint:
            reconciler.reconcile_endpoint(endpoint)
        return {}
    if event.get("detail-type") == "Scheduled Event" or event.get("source") == "maas.sweep":
        reconciler.sweep()
        return {}
    logger.warning("the reconciler got an event it does not know: %s", sorted(event))
    return {}


def _stream(reconciler: Reconciler, records: list[dict[str, Any]]) -> dict[str, Any]:
    done: set[tuple[str, str]] = set()
    for index, record in enumerate(records):
        alias = changed_alias(record)
        if alias is None or alias in done:
            continue  # several changes of one alias in a batch: one step reads the latest
        try:
            reconciler.reconcile(*alias)
        except ReconcileFailed as error:
            logger.error("%s; the stream retries from this record", error.message)
            return {
                "batchItemFailures": [
                    {"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in records[index:]
                ]
            }
        done.add(alias)
    return {"batchItemFailures": []}
