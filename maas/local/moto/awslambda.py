"""moto's Lambda: functions run in local warm containers (handed in by the embedded AWS),
versions and layers as CloudFormation refers to them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maas.local.lambda_containers import containers, use_containers
from maas.local.moto.patching import replace

if TYPE_CHECKING:
    from maas.local.lambda_containers import LambdaContainers


def _lambda_version_attribute() -> None:
    """Gap: moto's AWS::Lambda::Version has no GetAtt, and CDK's `live` alias points at
    `Fn::GetAtt [<version>, Version]`: the stack's outputs then fail to resolve."""
    from moto.awslambda.models import LambdaVersion

    if "get_cfn_attribute" in vars(LambdaVersion):
        return

    def has_cfn_attr(cls: type, attr: str) -> bool:
        return attr == "Version"

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        return str(self.version)

    LambdaVersion.has_cfn_attr = classmethod(has_cfn_attr)  # type: ignore[assignment,method-assign]
    LambdaVersion.get_cfn_attribute = get_cfn_attribute  # type: ignore[attr-defined]


def _lambda_layer_version_reference() -> None:
    """Gap: a Ref to moto's AWS::Lambda::LayerVersion gives the model object, not its ARN.
    Creating a function copes, but updating one (an update deploy) crashes on it."""
    from moto.awslambda.models import LayerVersion

    if "physical_resource_id" in vars(LayerVersion):
        return
    LayerVersion.physical_resource_id = property(lambda self: self.arn)  # type: ignore[attr-defined]


def _custom_resource_event(event: dict[str, Any]) -> dict[str, Any]:
    """Gaps in the events moto sends custom resources (CDK's S3 notifications, for one):
    the response URL names host.docker.internal, for a function in Docker, and properties
    keep their JSON types, where CloudFormation sends every scalar as a string."""
    from moto import settings

    docker_host = f"{settings.moto_server_host()}:{settings.moto_server_port()}"
    return {
        **event,
        "ResponseURL": str(event["ResponseURL"]).replace(docker_host, containers().endpoint, 1),
        "ResourceProperties": _as_strings(event.get("ResourceProperties", {})),
    }


def _as_strings(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _as_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_strings(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _lambda_runs_in_local_python() -> None:
    """Gap: moto invokes a function only in Docker (or answers a canned string without it).
    Here a function runs in a warm local Python process: its code unpacked, its environment
    set, AWS_ENDPOINT_URL pointing back at the emulator. The process uses this interpreter and
    its packages rather than the function's layers, whose wheels are built for Lambda's
    platform (arm64, Python 3.12) and need not load on this machine."""
    from moto.awslambda.models import LambdaFunction

    def invoke_locally(self: Any, event: Any = None) -> tuple[str, bool, str]:
        event = event if event is not None else {}
        if isinstance(event, dict) and "ResponseURL" in event:
            event = _custom_resource_event(event)
        result, errored = containers().invoke(self, event)
        return result, errored, ""

    replace(LambdaFunction, "_invoke_lambda", invoke_locally)


def install(lambda_containers: LambdaContainers) -> None:
    """Every extension of this service (idempotent); functions run in `lambda_containers`."""
    use_containers(lambda_containers)
    _lambda_version_attribute()
    _lambda_layer_version_reference()
    _lambda_runs_in_local_python()
