"""Who changed what: every version record, retirement, alias change and deletion names the
principal who made it, as API Gateway authenticated them (IAM ARN or JWT subject) or, for the
CLI talking to AWS directly, as STS names its credentials; never the local user name."""

from __future__ import annotations

import getpass
import json
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from maas.errors import ConfigError
from maas.identity import caller_of, sts_identity
from maas.local.context import LocalLambdaContext
from maas.local.events import http_api_event, http_response
from maas.registry import Registry
from maas.registry.dynamodb import HEAD, _key
from tests.functional.conftest import load_registry_handler

ALICE = "arn:aws:sts::111122223333:assumed-role/ml-release/alice"
BOB = "arn:aws:iam::111122223333:user/bob"
ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"


def iam(arn: str) -> dict[str, Any]:
    return {"iam": {"userArn": arn, "accountId": "111122223333", "accessKey": "AKIAEXAMPLE"}}


def jwt(sub: str) -> dict[str, Any]:
    return {"jwt": {"claims": {"sub": sub, "iss": ISSUER, "scope": "maas/registry.write"}, "scopes": None}}


@pytest.fixture
def handler_module(dynamo_registry: Registry, aws_endpoint: str) -> ModuleType:
    return load_registry_handler(dynamo_registry, aws_endpoint)


def call(module: ModuleType, authorizer: dict[str, Any], method: str, path: str, body: Any = None) -> Any:
    raw = json.dumps(body).encode() if body is not None else b""
    event = http_api_event(method=method, target=path, headers={"content-type": "application/json"}, body=raw)
    event["requestContext"]["authorizer"] = authorizer
    response = http_response(module.handler(event, LocalLambdaContext()))
    assert response.status < 300, response.body
    return json.loads(response.body)


def upload_and_register(module: ModuleType, authorizer: dict[str, Any], artifact: Path) -> Any:
    upload = call(module, authorizer, "POST", "/registry/models/sum/uploads", {"filename": "model.onnx"})
    put = urllib.request.Request(
        upload["upload_url"],
        data=artifact.read_bytes(),
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(put, timeout=30):
        pass
    return call(
        module, authorizer, "POST", "/registry/models/sum/versions", {"upload_key": upload["upload_key"]}
    )


def test_each_change_through_the_api_names_the_caller_who_made_it(
    handler_module: ModuleType, artifacts: dict[str, Path]
) -> None:
    first = upload_and_register(handler_module, iam(ALICE), artifacts["sum"])
    second = upload_and_register(handler_module, jwt("7f3c-bob"), artifacts["sum-v2"])
    assert first["created_by"] == ALICE
    assert second["created_by"] == f"jwt:{ISSUER}#7f3c-bob"

    call(handler_module, iam(ALICE), "PUT", "/registry/models/sum/aliases/prod", {"version": 1})
    call(
        handler_module, iam(BOB), "PUT", "/registry/models/sum/aliases/prod", {"weights": {"1": 90, "2": 10}}
    )
    call(handler_module, jwt("carol"), "POST", "/registry/models/sum/aliases/prod/rollback", {})
    alias = call(handler_module, iam(ALICE), "GET", "/registry/models/sum/aliases/prod")
    assert alias["updated_by"] == f"jwt:{ISSUER}#carol"
    history = call(handler_module, iam(ALICE), "GET", "/registry/models/sum/aliases/prod/history")["history"]
    assert [(h["action"], h["by"]) for h in history] == [
        ("rollback", f"jwt:{ISSUER}#carol"),
        ("canary", BOB),
        ("promote", ALICE),
    ]

    call(handler_module, iam(ALICE), "PUT", "/registry/models/sum/aliases/prod", {"version": 1})
    retired = call(handler_module, iam(BOB), "POST", "/registry/models/sum/versions/2/retire")
    assert (retired["status"], retired["status_changed_by"]) == ("retired", BOB)
    assert retired["status_changed_at"] is not None
    # Reading does not rewrite who did what.
    shown = call(handler_module, jwt("dave"), "GET", "/registry/models/sum/versions/2")
    assert (shown["created_by"], shown["status_changed_by"]) == (f"jwt:{ISSUER}#7f3c-bob", BOB)

    deleted = call(handler_module, iam(ALICE), "DELETE", "/registry/models/sum/aliases/prod")
    assert (deleted["action"], deleted["by"]) == ("delete", ALICE)


def test_the_tombstone_of_a_deleted_model_says_who_deleted_it(
    handler_module: ModuleType, artifacts: dict[str, Path], dynamo_registry: Registry
) -> None:
    upload_and_register(handler_module, iam(ALICE), artifacts["sum"])
    call(handler_module, iam(BOB), "DELETE", "/registry/models/sum")
    store = dynamo_registry.store
    head = store.client.get_item(TableName=store.table_name, Key=_key("sum", HEAD))["Item"]  # type: ignore[attr-defined]
    assert head["deleted_by"] == {"S": BOB}
    # Registered again, the name is alive: its head no longer names who deleted it.
    upload_and_register(handler_module, iam(ALICE), artifacts["sum"])
    head = store.client.get_item(TableName=store.table_name, Key=_key("sum", HEAD))["Item"]  # type: ignore[attr-defined]
    assert "deleted_by" not in head and "deleted_at" not in head


def test_no_change_through_the_api_is_recorded_under_the_functions_own_user(
    handler_module: ModuleType, artifacts: dict[str, Path]
) -> None:
    """A request without an authorizer (only `maas dev --auth none` serves one) is recorded as
    unauthenticated, with where it came from, not as whoever the function runs as."""
    version = upload_and_register(handler_module, {}, artifacts["sum"])
    assert version["created_by"] == "unauthenticated@127.0.0.1"
    assert getpass.getuser() not in version["created_by"]


@pytest.mark.parametrize(
    ("authorizer", "caller"),
    [
        (iam(ALICE), ALICE),
        ({"jwt": {"claims": {"sub": "abc"}}}, "jwt:abc"),
        # API Gateway's JWT authorizer does not require `sub`: a client-credentials token names its client.
        ({"jwt": {"claims": {"iss": ISSUER, "client_id": "svc-ci"}}}, f"jwt:{ISSUER}#svc-ci"),
        ({"jwt": {"claims": {"iss": ISSUER}}}, f"jwt:{ISSUER}#(no subject)"),
        # Every user of a Cognito identity pool assumes the same role: the identity tells them apart.
        (
            {
                "iam": {
                    "userArn": "arn:aws:sts::1:assumed-role/Pool/CognitoIdentityCredentials",
                    "cognitoIdentity": {"identityId": "eu-west-1:42"},
                }
            },
            "arn:aws:sts::1:assumed-role/Pool/CognitoIdentityCredentials (cognito identity eu-west-1:42)",
        ),
        ({"lambda": {"principal": "team-a"}}, "lambda-authorizer:team-a"),
        ({"iam": {"userArn": ""}}, "unauthenticated@198.51.100.7"),
        ({}, "unauthenticated@198.51.100.7"),
    ],
)
def test_the_caller_is_read_from_the_authorizer_api_gateway_filled_in(authorizer: Any, caller: str) -> None:
    event = http_api_event(method="GET", target="/", headers={}, body=b"", source_ip="198.51.100.7")
    event["requestContext"]["authorizer"] = authorizer
    assert caller_of(event) == caller


def test_the_cli_records_changes_under_its_sts_identity(
    dynamo_registry: Registry,
    artifacts: dict[str, Path],
    aws_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from maas.cli import main

    table = dynamo_registry.store.table_name  # type: ignore[attr-defined]
    bucket = dynamo_registry.artifacts.bucket
    where = ["--table", table, "--bucket", bucket, "--endpoint-url", aws_endpoint]
    assert main(["models", *where, "register", "sum", str(artifacts["sum"])]) == 0
    assert main(["models", *where, "promote", "sum", "1", "--alias", "prod"]) == 0
    expected = sts_identity(boto3.client("sts", endpoint_url=aws_endpoint))
    assert expected.startswith("arn:aws:")
    assert dynamo_registry.get("sum", 1).created_by == expected
    assert [change.by for change in dynamo_registry.history("sum", "prod").items] == [expected]


def test_a_change_nobody_can_be_named_for_is_refused_with_the_reason() -> None:
    # No STS answers on this port: the CLI cannot say who it is, so it changes nothing.
    client = boto3.client("sts", endpoint_url="http://127.0.0.1:9", region_name="us-east-1")
    client.meta.config.retries = {"max_attempts": 1}
    with pytest.raises(ConfigError, match="cannot tell which AWS identity"):
        sts_identity(client)
