"""Who is making a change, for the registry's audit trail: the caller API Gateway authenticated
(an IAM principal ARN, a JWT subject) or, for the CLI talking to AWS directly, its own STS
identity. Never a local user name alone, which anyone can set to anything."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from maas.errors import ConfigError

# What a request without an authorizer is recorded as: only `maas dev --auth none` serves one.
UNAUTHENTICATED = "unauthenticated"


def caller_of(event: dict[str, Any]) -> str:
    """The principal behind an API Gateway (payload 2.0) event.

    IAM authorization: the caller's ARN (`arn:aws:sts::123456789012:assumed-role/ci/run-42`),
    with the Cognito identity when the role is an identity pool's (all its users share it).
    JWT: `jwt:<issuer>#<subject>`, the subject being unique only within its issuer: `sub`, else
    the OAuth client (`client_id`, `azp`), since API Gateway does not require a `sub`. A Lambda
    authorizer's context may name a `principal`. Otherwise `unauthenticated@<source ip>`.
    """
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    iam = authorizer.get("iam") or {}
    if iam.get("userArn"):
        cognito = (iam.get("cognitoIdentity") or {}).get("identityId")
        return f"{iam['userArn']} (cognito identity {cognito})" if cognito else str(iam["userArn"])
    jwt = authorizer.get("jwt")
    if jwt:
        claims = jwt.get("claims") or {}
        subject = claims.get("sub") or claims.get("client_id") or claims.get("azp") or "(no subject)"
        issuer = claims.get("iss")
        return f"jwt:{issuer}#{subject}" if issuer else f"jwt:{subject}"
    principal = (authorizer.get("lambda") or {}).get("principal")
    if principal:
        return f"lambda-authorizer:{principal}"
    source_ip = (context.get("http") or {}).get("sourceIp")
    return f"{UNAUTHENTICATED}@{source_ip}" if source_ip else UNAUTHENTICATED


def sts_identity(client: Any) -> str:
    """The ARN the credentials of `client` (a boto3 STS client) act as. Raises ConfigError when
    STS cannot say: a change nobody can be named for is not made."""
    try:
        return str(client.get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError) as error:
        raise ConfigError(
            f"cannot tell which AWS identity is making this change (STS GetCallerIdentity: {error}); "
            "the registry records who makes each change, so check your AWS credentials"
        ) from None


__all__ = ["UNAUTHENTICATED", "caller_of", "sts_identity"]
