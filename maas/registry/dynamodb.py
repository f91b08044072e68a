"""The registry store on one DynamoDB table.

Items of a model share the partition `M#<name>`:

| sort key | item |
|---|---|
| `#HEAD` | latest version number, alias epoch (also indexed in GSI `models` to list models) |
| `V#<version, 10 digits>` | one version (document + status) |
| `A#<alias>` | one alias (document + revision); a deleted alias keeps its item, with no weights |
| `C#<alias, lower case>` | the alias that has this name regardless of case |
| `H#<alias>#<revision, 10 digits>` | one entry of an alias's history |
| `T#<alias>` | the state of the alias's serving target, as the reconciler last recorded it |

The table's stream drives the reconciler, which listens to `A#` items alone.
The partition `N#<name, lower case>` holds the model that has that name regardless of case.
Deleting a model keeps its head as a tombstone (`deleted_at`, out of the index), so its version
numbers are never given again; `purging` marks a tombstone whose items are still being removed.

Every multi-item change is a TransactWriteItems with conditions, so it happens whole or
not at all, and only on the state the caller read.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from maas.errors import ConflictError, InvalidInput
from maas.registry.models import Alias, AliasChange, ModelVersion, Page, TargetState, VersionStatus, utc_now
from maas.registry.store import (
    MAX_ALIAS_VERSIONS,
    ModelHead,
    RegistryStore,
    UnreadableRecord,
    alias_name_taken,
    decode_token,
    encode_token,
    name_taken,
)

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)
Record = TypeVar("Record", bound=BaseModel)

MODELS_INDEX = "models"
HEAD = "#HEAD"
NAME = "#NAME"
# Racing registrations retry; each retry reads the new counter first.
MAX_ATTEMPTS = 64
# What one alias write puts in its transaction besides a check per version (see write_alias).
ALIAS_WRITE_ITEMS = 4
TRANSACTION_ITEMS = 100
assert MAX_ALIAS_VERSIONS + ALIAS_WRITE_ITEMS <= TRANSACTION_ITEMS


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
        # What the reconciler reads: which alias changed. It reads the alias itself, consistently.
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def _pk(name: str) -> dict[str, str]:
    return {"S": f"M#{name}"}


def _key(name: str, sort_key: str) -> dict[str, dict[str, str]]:
    return {"pk": _pk(name), "sk": {"S": sort_key}}


def _name_key(name: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"N#{name.lower()}"}, "sk": {"S": NAME}}


def _version_sk(version: int) -> str:
    return f"V#{version:010d}"


def _head(item: dict[str, Any]) -> ModelHead:
    return ModelHead(
        name=item["pk"]["S"][2:],
        latest_version=int(item["latest"]["N"]),
        alias_epoch=int(item.get("epoch", {"N": "0"})["N"]),
        created_at=item["created_at"]["S"],
    )


def _label(sort_key: str) -> str:
    """What an item of a model's partition is, in words: `version 3`, `alias 'prod'`."""
    kind, _, rest = sort_key.partition("#")
    if kind == "V":
        return f"version {int(rest)}" if rest.isdigit() else f"version '{rest}'"
    if kind == "A":
        return f"alias '{rest}'"
    if kind == "T":
        return f"target state of alias '{rest}'"
    if kind == "H":
        alias, _, revision = rest.rpartition("#")
        return f"revision {revision.lstrip('0') or '0'} of alias '{alias}'"
    return f"item '{sort_key}'"


def _start_key(
    listing: str, token: str | None, expected: dict[str, str | None], sort_prefix: str
) -> dict[str, Any] | None:
    """The ExclusiveStartKey in a page token of `listing`: exactly the key attributes `expected`
    (name -> value, or None for the sort key, which must start with `sort_prefix`)."""
    if not token:
        return None
    key = decode_token(listing, token)
    if (
        not isinstance(key, dict)
        or set(key) != set(expected)
        or not all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values())
        or not all(key[name]["S"] == value for name, value in expected.items() if value is not None)
        or not key["sk"]["S"].startswith(sort_prefix)
    ):
        raise InvalidInput("the page token is not one this registry issued for this listing")
    return key


class DynamoDBStore(RegistryStore):
    def __init__(self, table_name: str, client: Any = None) -> None:
        import boto3

        self.table_name = table_name
        self.client = client or boto3.client("dynamodb")

    # Versions

    def add_version(self, name: str, build: Callable[[int], ModelVersion]) -> ModelVersion:
        for attempt in range(MAX_ATTEMPTS):
            item = self._head_item(name)
            if item is not None and "purging" in item:
                self._purge(name)
                continue
            previous = int(item["latest"]["N"]) if item else 0
            version = build(previous + 1)
            try:
                reasons = self._transact(
                    [
                        {
                            "Update": self._bump_latest(
                                name, previous, revive=item is not None and "deleted_at" in item
                            )
                        },
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
                        {"Put": self._claim_name(name)},
                    ],
                    raise_conflict=False,
                )
            except ConflictError:
                reasons = []
            if reasons is None:
                return version
            if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
                raise name_taken(name, self.owner_of(name) or "?")
            time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise ConflictError(f"could not allocate a version of model '{name}' after {MAX_ATTEMPTS} attempts")

    def _bump_latest(self, name: str, previous: int, *, revive: bool) -> dict[str, Any]:
        # A model registered again after its deletion starts a new life: listed again, created now.
        created_at = ":now" if revive else "if_not_exists(created_at, :now)"
        return {
            "TableName": self.table_name,
            "Key": _key(name, HEAD),
            "UpdateExpression": (
                f"SET latest = :next, created_at = {created_at}, "
                "epoch = if_not_exists(epoch, :zero), gsi1pk = :models, gsi1sk = :name REMOVE deleted_at, deleted_by"
            ),
            "ConditionExpression": (
                "attribute_not_exists(latest)"
                if previous == 0
                else "latest = :previous AND attribute_not_exists(purging)"
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

    def _claim_name(self, name: str) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Item": {**_name_key(name), "name": {"S": name}},
            "ConditionExpression": "attribute_not_exists(pk) OR #name = :name",
            "ExpressionAttributeNames": {"#name": "name"},
            "ExpressionAttributeValues": {":name": {"S": name}},
        }

    def owner_of(self, name: str) -> str | None:
        item = self.client.get_item(TableName=self.table_name, Key=_name_key(name), ConsistentRead=True).get(
            "Item"
        )
        return item["name"]["S"] if item else None

    def head(self, name: str) -> ModelHead | None:
        item = self._head_item(name)
        if item is None or "deleted_at" in item:
            return None
        try:
            return _head(item)
        except (KeyError, ValueError):
            raise UnreadableRecord(f"the head record of model '{name}'", "it lacks its counters") from None

    def _head_item(self, name: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.client.get_item(
            TableName=self.table_name, Key=_key(name, HEAD), ConsistentRead=True
        ).get("Item")
        return item

    def get_version(self, name: str, version: int) -> ModelVersion | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=_key(name, _version_sk(version)), ConsistentRead=True
        ).get("Item")
        return self._parse(ModelVersion, name, item) if item else None

    def list_versions(self, name: str, limit: int, token: str | None) -> Page:
        listing = f"versions/{name}"
        start = _start_key(listing, token, {"pk": f"M#{name}", "sk": None}, "V#")
        items, next_key = self._query_prefix(name, "V#", limit, start)
        versions, unreadable = self._parse_all(ModelVersion, name, items)
        return Page(items=versions, next_token=_token(listing, next_key), unreadable=unreadable)

    def list_models(self, limit: int, token: str | None) -> Page:
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": MODELS_INDEX,
            "KeyConditionExpression": "gsi1pk = :models",
            "ExpressionAttributeValues": {":models": {"S": "MODELS"}},
            "Limit": limit,
        }
        start = _start_key(
            "models", token, {"pk": None, "sk": HEAD, "gsi1pk": "MODELS", "gsi1sk": None}, HEAD
        )
        if start is not None:
            if start["pk"]["S"] != f"M#{start['gsi1sk']['S']}":
                raise InvalidInput("the page token is not one this registry issued for this listing")
            arguments["ExclusiveStartKey"] = start
        answer = self.client.query(**arguments)
        heads, unreadable = [], []
        for item in answer.get("Items", []):
            try:
                heads.append(_head(item))
            except (KeyError, ValueError):
                logger.warning("the head record %s cannot be read; it is left out", item.get("pk"))
                unreadable.append(f"model '{item.get('gsi1sk', {}).get('S', '?')}'")
        return Page(
            items=heads, next_token=_token("models", answer.get("LastEvaluatedKey")), unreadable=unreadable
        )

    # Aliases

    def get_alias(self, name: str, alias: str, *, include_deleted: bool = False) -> Alias | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=_key(name, f"A#{alias}"), ConsistentRead=True
        ).get("Item")
        found = self._parse(Alias, name, item) if item else None
        return found if found is not None and (include_deleted or not found.deleted) else None

    def list_aliases(self, name: str) -> list[Alias]:
        aliases: list[Alias] = []
        start: dict[str, Any] | None = None
        while True:
            items, start = self._query_prefix(name, "A#", 100, start)
            aliases.extend(a for a in self._parse_all(Alias, name, items)[0] if not a.deleted)
            if start is None:
                return aliases

    def write_alias(self, new: Alias, change: AliasChange) -> None:
        if len(new.weights) > MAX_ALIAS_VERSIONS:
            raise InvalidInput(
                f"an alias can point at most at {MAX_ALIAS_VERSIONS} versions, not {len(new.weights)}"
            )
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
        # The alias's name regardless of case: claimed while it points somewhere, freed when deleted.
        claim: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _key(new.name, f"C#{new.alias.lower()}"),
            "ConditionExpression": "attribute_not_exists(pk) OR #alias = :alias",
            "ExpressionAttributeNames": {"#alias": "alias"},
            "ExpressionAttributeValues": {":alias": {"S": new.alias}},
        }
        if not new.deleted:
            claim["Item"] = {**claim.pop("Key"), "alias": {"S": new.alias}}
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
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(deleted_at)",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {"Delete" if new.deleted else "Put": claim},
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
        self._alias_write_failed(new, reasons)

    def _alias_write_failed(self, new: Alias, reasons: list[str]) -> None:
        failed = [reason == "ConditionalCheckFailed" for reason in reasons]
        if failed[0] or failed[1]:
            raise ConflictError(
                f"alias '{new.alias}' of model '{new.name}' changed since it was read (expected revision "
                f"{new.revision - 1}); read it again"
            )
        if failed[2]:
            raise ConflictError(f"model '{new.name}' was deleted meanwhile")
        if failed[3]:
            item = self.client.get_item(
                TableName=self.table_name, Key=_key(new.name, f"C#{new.alias.lower()}"), ConsistentRead=True
            ).get("Item")
            raise alias_name_taken(new, item["alias"]["S"] if item else "?")
        inactive = [str(v) for v, lost in zip(new.versions, failed[4:], strict=True) if lost]
        if inactive:
            raise ConflictError(
                f"version(s) {', '.join(inactive)} of model '{new.name}' are retired or missing"
            )
        raise ConflictError(f"alias '{new.alias}' of model '{new.name}' could not be written: {reasons}")

    def alias_history(self, name: str, alias: str, limit: int, token: str | None) -> Page:
        listing = f"history/{name}/{alias}"
        start = _start_key(listing, token, {"pk": f"M#{name}", "sk": None}, f"H#{alias}#")
        items, next_key = self._query_prefix(name, f"H#{alias}#", limit, start, newest_first=True)
        changes, unreadable = self._parse_all(AliasChange, name, items)
        return Page(items=changes, next_token=_token(listing, next_key), unreadable=unreadable)

    # Target states

    def get_target_state(self, name: str, alias: str) -> TargetState | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=_key(name, f"T#{alias}"), ConsistentRead=True
        ).get("Item")
        return self._parse(TargetState, name, item) if item else None

    def put_target_state(self, state: TargetState) -> None:
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": {
                **_key(state.name, f"T#{state.alias}"),
                "doc": {"S": state.model_dump_json()},
                "seq": {"N": str(state.sequence)},
            },
        }
        if state.sequence == 1:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "seq = :expected"
            put["ExpressionAttributeValues"] = {":expected": {"N": str(state.sequence - 1)}}
        self._transact(
            [
                {"Put": put},
                {
                    "ConditionCheck": {
                        "TableName": self.table_name,
                        "Key": _key(state.name, f"A#{state.alias}"),
                        "ConditionExpression": "revision = :revision",
                        "ExpressionAttributeValues": {":revision": {"N": str(state.revision)}},
                    }
                },
            ],
            message=f"alias '{state.alias}' of model '{state.name}' or its target state changed meanwhile",
        )

    # Retiring and deleting

    def set_status(self, name: str, version: int, status: VersionStatus, alias_epoch: int, by: str) -> None:
        record = self.get_version(name, version)
        if record is None:
            raise ConflictError(f"version {version} of model '{name}' does not exist")
        updated = record.with_status(status, by)
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

    def delete_model(self, name: str, alias_epoch: int, by: str) -> None:
        # The head becomes a tombstone (saying who deleted the model), and only if no alias was written since the caller looked.
        # While it is `purging` nothing can be written to the model, so the rest can go in plain
        # batches; whoever next registers the name finishes a purge that was interrupted.
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(name, HEAD),
                UpdateExpression="SET deleted_at = :now, deleted_by = :by, purging = :yes REMOVE gsi1pk, gsi1sk",
                ConditionExpression="epoch = :epoch AND attribute_not_exists(deleted_at)",
                ExpressionAttributeValues={
                    ":epoch": {"N": str(alias_epoch)},
                    ":now": {"S": utc_now()},
                    ":by": {"S": by},
                    ":yes": {"BOOL": True},
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConflictError(f"the aliases of model '{name}' changed meanwhile; try again") from None
            raise
        self._purge(name)

    def _purge(self, name: str) -> None:
        """Remove every item of a deleted model but its head, then mark the purge done."""
        keys: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _pk(name)},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        ):
            keys.extend(key for key in page.get("Items", []) if key["sk"]["S"] != HEAD)
        for start in range(0, len(keys), 25):
            batch = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            pending: dict[str, Any] = {self.table_name: batch}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(name, HEAD),
                UpdateExpression="REMOVE purging",
                ConditionExpression="attribute_exists(purging)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise  # else another caller finished the same purge

    def _epoch_check(self, name: str, alias_epoch: int) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Key": _key(name, HEAD),
            "ConditionExpression": "epoch = :epoch AND attribute_not_exists(deleted_at)",
            "ExpressionAttributeValues": {":epoch": {"N": str(alias_epoch)}},
        }

    # Reading

    def _parse(self, model: type[Record], name: str, item: dict[str, Any]) -> Record:
        what = f"{_label(item['sk']['S'])} of model '{name}'"
        try:
            document = item["doc"]["S"]
        except (KeyError, TypeError):
            raise UnreadableRecord(what, "it has no document") from None
        try:
            return model.model_validate_json(document)
        except ValidationError as error:
            raise UnreadableRecord.invalid(what, error) from None

    def _parse_all(
        self, model: type[Record], name: str, items: list[dict[str, Any]]
    ) -> tuple[list[Record], list[str]]:
        """The records that parse, and the labels of those that do not (logged, not raised)."""
        parsed: list[Record] = []
        unreadable: list[str] = []
        for item in items:
            try:
                parsed.append(self._parse(model, name, item))
            except UnreadableRecord as error:
                logger.warning("%s; it is left out of the listing", error.message)
                unreadable.append(_label(item["sk"]["S"]))
        return parsed, unreadable

    def _query_prefix(
        self, name: str, prefix: str, limit: int, start: dict[str, Any] | None, *, newest_first: bool = False
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": _pk(name), ":prefix": {"S": prefix}},
            "Limit": limit,
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        if start is not None:
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
            if code == "ValidationException" and "size" in error.response["Error"].get("Message", ""):
                raise InvalidInput("the record is larger than the 400 KB a DynamoDB item holds") from None
            if code not in ("TransactionCanceledException", "TransactionConflictException"):
                raise
            reasons = [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]
            if raise_conflict or not reasons:
                raise ConflictError(message) from None
            return reasons
        return None


def _token(listing: str, key: dict[str, Any] | None) -> str | None:
    return encode_token(listing, key) if key else None


__all__ = ["DynamoDBStore", "table_definition"]
