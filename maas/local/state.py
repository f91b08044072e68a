"""What `maas dev` keeps across restarts: the items of its DynamoDB tables and the objects of its
bucket, written under `.maas/state/` when it stops and put back into the embedded AWS (moto,
which keeps everything in memory) when it starts.

A snapshot is a folder: `tables/<table>.jsonl` (one item per line, in DynamoDB's typed JSON,
binary values in base64), `objects/<sha256 of the bytes>` (each distinct object once) and
`bucket.json` (key -> object file, content type, user metadata). It is written next to the
previous one and renamed over it, so a stop that is cut short leaves the last whole snapshot.
Only current object versions are kept: after a restart each object has one version.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class Restored:
    items: int
    objects: int

    def __str__(self) -> str:
        return f"{self.items} table items and {self.objects} objects"


class LocalState:
    """The snapshot under `root` of `tables` and `bucket` in the embedded AWS."""

    def __init__(self, root: Path, *, tables: list[str], bucket: str) -> None:
        self.root = root
        self.tables = tables
        self.bucket = bucket

    @property
    def snapshot(self) -> Path:
        return self.root / "snapshot"

    def exists(self) -> bool:
        return (self.snapshot / "bucket.json").is_file()

    def clear(self) -> None:
        shutil.rmtree(self.snapshot, ignore_errors=True)

    def save(self, dynamodb: Any, s3: Any) -> None:
        """Write the tables and the bucket as they are now, replacing the last snapshot."""
        partial = self.root / "snapshot.partial"
        shutil.rmtree(partial, ignore_errors=True)
        (partial / "tables").mkdir(parents=True)
        (partial / "objects").mkdir()
        for table in self.tables:
            with (partial / "tables" / f"{table}.jsonl").open("w") as lines:
                for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
                    for item in page.get("Items", []):
                        lines.write(json.dumps(_plain(item)) + "\n")
        index = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for listed in page.get("Contents", []):
                index[listed["Key"]] = self._save_object(s3, listed["Key"], partial / "objects")
        (partial / "bucket.json").write_text(json.dumps({"format": FORMAT, "objects": index}, indent=1))
        self.clear()
        partial.rename(self.snapshot)

    def restore(self, dynamodb: Any, s3: Any) -> Restored:
        """Put the last snapshot back into the (empty) tables and bucket."""
        index = json.loads((self.snapshot / "bucket.json").read_text())
        if index.get("format") != FORMAT:
            raise ValueError(f"{self.snapshot} is a snapshot of another format ({index.get('format')})")
        items = 0
        for table in self.tables:
            path = self.snapshot / "tables" / f"{table}.jsonl"
            if not path.is_file():
                continue
            batch: list[dict[str, Any]] = []
            for line in path.read_text().splitlines():
                batch.append({"PutRequest": {"Item": _typed(json.loads(line))}})
                if len(batch) == 25:  # BatchWriteItem's most
                    items += _write(dynamodb, table, batch)
                    batch = []
            items += _write(dynamodb, table, batch)
        for key, stored in index["objects"].items():
            s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=(self.snapshot / "objects" / stored["file"]).read_bytes(),
                ContentType=stored["content_type"],
                Metadata=stored["metadata"],
            )
        return Restored(items=items, objects=len(index["objects"]))

    def _save_object(self, s3: Any, key: str, objects: Path) -> dict[str, Any]:
        got = s3.get_object(Bucket=self.bucket, Key=key)
        body = got["Body"].read()
        name = hashlib.sha256(body).hexdigest()
        if not (objects / name).exists():
            (objects / name).write_bytes(body)
        return {
            "file": name,
            "content_type": got.get("ContentType", "binary/octet-stream"),
            "metadata": got.get("Metadata", {}),
        }


def _write(dynamodb: Any, table: str, batch: list[dict[str, Any]]) -> int:
    pending: dict[str, Any] = {table: batch} if batch else {}
    while pending:
        pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return len(batch)


def _plain(value: Any) -> Any:
    """A typed DynamoDB item as JSON: binary values (B, BS) in base64, under a marker key."""
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$base64"}:
            return base64.b64decode(value["$base64"])
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return value


__all__ = ["LocalState", "Restored"]
