"""cdk-nag acknowledgments: every suppression names its rule and says why, in code."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Suppress cdk-nag finding `rule` (e.g. `AwsSolutions-IAM5[Resource::...]`) on `construct`."""
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical ID of an L2 construct's resource, as cdk-nag names it in findings."""
    resource = construct.node.default_child
    assert isinstance(resource, CfnResource)
    stack = Stack.of(construct)
    return str(stack.resolve(stack.get_logical_id(resource)))
