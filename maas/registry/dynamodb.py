"""The registry store on one DynamoDB table.

Items of a model share the partition `M#<name>`:

| sort key | item |
|---|---|
| `#HEAD` | latest version number, alias epoch (also indexed in GSI `models` to list models) |
| `V#<version, 10 digits>` | one version (document + status) |
| `A#<alias>` | one alias (document + revision) |
| `H#<alias>#<revision, 10 digits>` | one entry of an alias's history |

Every multi-item change is a TransactWriteItems with conditions, so it happens whole or
not at all, and only on the state the caller read.
"""

from __future__ import annotations

import base64
import json
import random
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from maas.errors import ConflictError, InvalidInput
from maas.registry.models import Alias, AliasChange, ModelVersion, Page, VersionStatus, utc_now
from maas.registry.store import ModelHead, RegistryStore

if TYPE_CHECKING:
    from collections.abc import Callable

MODELS_INDEX = "models"
HEAD = "#HEAD"
# Racing registrations retry; each retry reads the new counter first.
MAX_ATTEMPTS = 64


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments for the registry table (the CDK app declares the same)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gsi1pk", "AttributeType": "S"},
            {"AttributeName": "gsi1sk", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": MODELS_INDEX,
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def _pk(name: str) -> dict[str, str]:
    return {"S": f"M#{name}"}


def _key(name: str, sort_key: str) -> dict[str, dict[str, str]]:
    return {"pk": _pk(name), "sk": {"S": sort_key}}


def _version_sk(version: int) -> str:
    return f"V#{version:010d}"


def _encode_token(key: dict[str, Any] | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


def _decode_token(token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        key: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise InvalidInput("the page token is not one this registry issued") from None
    return key


def _head(item: dict[str, Any]) -> ModelHead:
    return ModelHead(
        name=item["gsi1sk"]["S"],
        latest_version=int(item["latest"]["N"]),
        alias_epoch=int(item.get("epoch", {"N": "0"})["N"]),
        created_at=item["created_at"]["S"],
    )


class DynamoDBStore(RegistryStore):
    def __init__(self, table_name: str, client: Any = None) -> None:
        import boto3

        self.table_name = table_name
        self.client = client or boto3.client("dynamodb")

    def add_version(self, name: str, build: Callable[[int], ModelVersion]) -> ModelVersion:
        for attempt in range(MAX_ATTEMPTS):
            head = self.head(name)
            previous = head.latest_version if head else 0
            version = build(previous + 1)
            try:
                self._transact(
                    [
                        {"Update": self._bump_latest(name, previous)},
                        {
                            "Put": {
                                "TableName": self.table_name,
                                "Item": {
                                    **_key(name, _version_sk(version.version)),
                                    "doc": {"S": version.model_dump_json()},
                                    "status": {"S": version.status.value},
                                },
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                )
                return version
            except ConflictError:
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise ConflictError(f"could not allocate a version of model '{name}' after {MAX_ATTEMPTS} attempts")

    def _bump_latest(self, name: str, previous: int) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Key": _key(name, HEAD),
            "UpdateExpression": (
                "SET latest = :next, created_at = if_not_exists(created_at, :now), "
                "epoch = if_not_exists(epoch, :zero), gsi1pk = :models, gsi1sk = :name"
            ),
            "ConditionExpression": (
                "attribute_not_exists(latest)" if previous == 0 else "latest = :previous"
            ),
            "ExpressionAttributeValues": {
                ":next": {"N": str(previous + 1)},
                ":now": {"S": utc_now()},
                ":zero": {"N": "0"},
                ":models": {"S": "MODELS"},
                ":name": {"S": name},
                **({":previous": {"N": str(previous)}} if previous else {}),
            },
        }

    def head(self, name: str) -> ModelHead | None:
        item = self.client.get_item(TableName=self.table_name, Key=_key(name, HEAD), ConsistentRead=True).get(
            "Item"
        )
        return _head(item) if item else None

    def get_version(self, name: str, version: int) -> ModelVersion | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=_key(name, _version_sk(version)), ConsistentRead=True
        ).get("Item")
        return ModelVersion.model_validate_json(item["doc"]["S"]) if item else None

    def list_versions(self, name: str, limit: int, token: str | None) -> Page:
        items, next_key = self._query_prefix(name, "V#", limit, token)
        return Page(
            items=[ModelVersion.model_validate_json(item["doc"]["S"]) for item in items],
            next_token=_encode_token(next_key),
        )

    def list_models(self, limit: int, token: str | None) -> Page:
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": MODELS_INDEX,
            "KeyConditionExpression": "gsi1pk = :models",
            "ExpressionAttributeValues": {":models": {"S": "MODELS"}},
            "Limit": limit,
        }
        start = _decode_token(token)
        if start:
            arguments["ExclusiveStartKey"] = start
        answer = self.client.query(**arguments)
        return Page(
            items=[_head(item) for item in answer.get("Items", [])],
            next_token=_encode_token(answer.get("LastEvaluatedKey")),
        )

    def get_alias(self, name: str, alias: str) -> Alias | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=_key(name, f"A#{alias}"), ConsistentRead=True
        ).get("Item")
        return Alias.model_validate_json(item["doc"]["S"]) if item else None

    def list_aliases(self, name: str) -> list[Alias]:
        aliases: list[Alias] = []
        token: str | None = None
        while True:
            items, next_key = self._query_prefix(name, "A#", 100, token)
            aliases.extend(Alias.model_validate_json(item["doc"]["S"]) for item in items)
            token = _encode_token(next_key)
            if token is None:
                return aliases

    def write_alias(self, new: Alias, change: AliasChange) -> None:
        expected = new.revision - 1
        alias_put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": {
                **_key(new.name, f"A#{new.alias}"),
                "doc": {"S": new.model_dump_json()},
                "revision": {"N": str(new.revision)},
            },
        }
        if expected == 0:
            alias_put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            alias_put["ConditionExpression"] = "revision = :expected"
            alias_put["ExpressionAttributeValues"] = {":expected": {"N": str(expected)}}
        operations: list[dict[str, Any]] = [
            {"Put": alias_put},
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {
                        **_key(new.name, f"H#{new.alias}#{new.revision:010d}"),
                        "doc": {"S": change.model_dump_json()},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": _key(new.name, HEAD),
                    "UpdateExpression": "ADD epoch :one",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
        for version in new.versions:
            operations.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table_name,
                        "Key": _key(new.name, _version_sk(version)),
                        "ConditionExpression": "#status = :active",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {":active": {"S": VersionStatus.ACTIVE.value}},
                    }
                }
            )
        reasons = self._transact(operations, raise_conflict=False)
        if reasons is None:
            return
        if reasons[0] == "ConditionalCheckFailed" or reasons[1] == "ConditionalCheckFailed":
            raise ConflictError(
                f"alias '{new.alias}' of model '{new.name}' changed since it was read (expected revision "
                f"{expected}); read it again"
            )
        inactive = [
            str(v)
            for v, reason in zip(new.versions, reasons[3:], strict=True)
            if reason == "ConditionalCheckFailed"
        ]
        if inactive:
            raise ConflictError(
                f"version(s) {', '.join(inactive)} of model '{new.name}' are retired or missing"
            )
        raise ConflictError(f"alias '{new.alias}' of model '{new.name}' could not be written: {reasons}")

    def alias_history(self, name: str, alias: str, limit: int, token: str | None) -> Page:
        items, next_key = self._query_prefix(name, f"H#{alias}#", limit, token, newest_first=True)
        return Page(
            items=[AliasChange.model_validate_json(item["doc"]["S"]) for item in items],
            next_token=_encode_token(next_key),
        )

    def set_status(self, name: str, version: int, status: VersionStatus, alias_epoch: int) -> None:
        record = self.get_version(name, version)
        if record is None:
            raise ConflictError(f"version {version} of model '{name}' does not exist")
        updated = record.model_copy(update={"status": status})
        self._transact(
            [
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": _key(name, _version_sk(version)),
                        "UpdateExpression": "SET #status = :status, doc = :doc",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {
                            ":status": {"S": status.value},
                            ":doc": {"S": updated.model_dump_json()},
                        },
                    }
                },
                {"ConditionCheck": self._epoch_check(name, alias_epoch)},
            ],
            message=f"the aliases of model '{name}' changed meanwhile; try again",
        )

    def delete_model(self, name: str, alias_epoch: int) -> None:
        # The head goes first and only if no alias was written since the caller looked;
        # without a head no alias can be written, so the rest can go in plain batches.
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=_key(name, HEAD),
                ConditionExpression="epoch = :epoch",
                ExpressionAttributeValues={":epoch": {"N": str(alias_epoch)}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConflictError(f"the aliases of model '{name}' changed meanwhile; try again") from None
            raise
        keys: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _pk(name)},
            ProjectionExpression="pk, sk",
        ):
            keys.extend(page.get("Items", []))
        for start in range(0, len(keys), 25):
            batch = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            pending: dict[str, Any] = {self.table_name: batch}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    def _epoch_check(self, name: str, alias_epoch: int) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Key": _key(name, HEAD),
            "ConditionExpression": "epoch = :epoch",
            "ExpressionAttributeValues": {":epoch": {"N": str(alias_epoch)}},
        }

    def _query_prefix(
        self, name: str, prefix: str, limit: int, token: str | None, *, newest_first: bool = False
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": _pk(name), ":prefix": {"S": prefix}},
            "Limit": limit,
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        start = _decode_token(token)
        if start:
            arguments["ExclusiveStartKey"] = start
        answer = self.client.query(**arguments)
        return answer.get("Items", []), answer.get("LastEvaluatedKey")

    def _transact(
        self,
        operations: list[dict[str, Any]],
        *,
        raise_conflict: bool = True,
        message: str = "a concurrent write won",
    ) -> list[str] | None:
        """Run a transaction; on cancellation raise ConflictError, or return the reasons per item."""
        try:
            self.client.transact_write_items(TransactItems=operations)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code not in ("TransactionCanceledException", "TransactionConflictException"):
                raise
            reasons = [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]
            if raise_conflict or not reasons:
                raise ConflictError(message) from None
            return reasons
        return None
