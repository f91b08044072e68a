"""Which parts of a split batch file are done, in one DynamoDB item per file (in the batch
side's idempotency table), so that the invocation finishing the last part knows it is the
last and has every part's counts to write the file's manifest.

A part is added to a set, so the same part finished twice (a redelivery that ran again
because its first run died before its idempotency record was saved) counts once.
"""

from __future__ import annotations

import json
import time
from typing import Any

ITEM_PREFIX = "maas-split#"
# As long as the idempotency records: a plan outlives any retry of its parts.
EXPIRES_AFTER_SECONDS = 7 * 24 * 3600


class PartProgress:
    """The progress of split files in `table` (its key: `id`, a string; TTL: `expiration`)."""

    def __init__(self, table: str, client: Any) -> None:
        self.table = table
        self.client = client

    def start(self, job_id: str, parts: int) -> None:
        """Records that the file `job_id` runs as `parts` parts (again, if it was planned before)."""
        self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": ITEM_PREFIX + job_id}},
            UpdateExpression="SET parts = :parts, expiration = :expiration",
            ExpressionAttributeValues={
                ":parts": {"N": str(parts)},
                ":expiration": {"N": str(int(time.time()) + EXPIRES_AFTER_SECONDS)},
            },
        )

    def finish(self, job_id: str, index: int, result: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Records part `index` as done with `result`; every part's result, in order, when all
        are done now, else None."""
        answer = self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": ITEM_PREFIX + job_id}},
            UpdateExpression="SET #result = :result ADD done :index",
            ExpressionAttributeNames={"#result": _result_name(index)},
            ExpressionAttributeValues={
                ":result": {"S": json.dumps(result)},
                ":index": {"NS": [str(index)]},
            },
            ReturnValues="ALL_NEW",
        )
        item = answer["Attributes"]
        if "parts" not in item:
            return None  # the plan's record is gone (expired): nothing to finish
        parts = int(item["parts"]["N"])
        if len(item.get("done", {}).get("NS", [])) < parts:
            return None
        return [json.loads(item[_result_name(number)]["S"]) for number in range(parts)]


def _result_name(index: int) -> str:
    return f"part_{index:05d}"
