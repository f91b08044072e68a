"""Where moto's server lacks what maas needs: small extensions, each naming the gap it fills.

They are installed into moto's classes when the embedded AWS starts, and each has its
own test in tests/functional/test_moto_gaps.py.
"""

from __future__ import annotations

import os
import time
from typing import Any

from maas.local.lambda_containers import WORKERS


def install(endpoint: str | None = None) -> None:
    """Install every extension (idempotent; an extension steps aside once moto has the call).
    `endpoint` is where the emulator listens, for the Lambda functions it runs to call back."""
    if endpoint is not None:
        WORKERS.endpoint = endpoint
    _sagemaker_update_endpoint()
    _cloudformation_loopback_template_url()
    _cloudformation_resources()
    _lambda_version_attribute()
    _sagemaker_current_instance_types()
    _sagemaker_names_from_templates()
    _cloudformation_outputs_after_change_sets()
    _cloudformation_change_set_not_found()
    _cloudformation_previous_ssm_values()
    _lambda_layer_version_reference()
    _lambda_runs_in_local_python()
    _s3_notifications_name_the_upload()
    _dynamodb_streams_reach_lambda_through_a_poller()


def _install(owner: Any, name: str, replacement: Any) -> bool:
    """Put `replacement` in place of `owner.name` unless an earlier install() already did;
    whether it did now. Extensions capture the original before they call this."""
    if getattr(getattr(owner, name), "maas_gap", False):
        return False
    replacement.maas_gap = True
    setattr(owner, name, replacement)
    return True


def _s3_notifications_name_the_upload() -> None:
    """Gap: moto 5.2.5's S3 event notifications carry neither the object's `versionId` nor a
    `sequencer`, which AWS's always do; without them two uploads of the same bytes look like
    one redelivered notification to batch's idempotency. Both are added, the sequencer
    increasing with each event as S3's does for a key."""
    import itertools
    import time

    from moto.s3 import notifications

    original = notifications._get_s3_event
    events = itertools.count()

    def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        for record in event["Records"]:
            obj = record["s3"]["object"]
            if key.version_id and key.version_id != "null":
                obj["versionId"] = key.version_id
            obj["sequencer"] = f"{time.time_ns():016X}{next(events) % 65536:04X}"
        return event

    _install(notifications, "_get_s3_event", s3_event)


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

    _install(StreamShard, "add", add_without_invoking)


def _sagemaker_update_endpoint() -> None:
    """Gap: moto 5.2.5 implements no SageMaker UpdateEndpoint, which a promotion of a SageMaker
    model calls. This one behaves as AWS's blue/green update does, seen from outside: the
    endpoint is `Updating` (on its old config, refusing another update) for
    MAAS_SAGEMAKER_UPDATE_SECONDS (default 0), then `InService` on the new config and variants."""
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    if hasattr(SageMakerModelBackend, "update_endpoint"):
        return

    def finish(self: SageMakerModelBackend, endpoint: Any) -> None:
        config_name = getattr(endpoint, "maas_pending_config", None)
        if config_name is None or time.monotonic() < endpoint.maas_in_service_at:
            return
        config = self.describe_endpoint_config(config_name)
        endpoint.endpoint_config_name = config_name
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.data_capture_config = config.get("DataCaptureConfig") or {}
        endpoint.endpoint_status = "InService"
        endpoint.last_modified_time = utcnow()
        endpoint.maas_pending_config = None

    def update_endpoint(self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        finish(self, endpoint)
        if endpoint.endpoint_status != "InService":
            raise ValidationError(message=f"Cannot update in-progress endpoint '{endpoint.arn}'.")
        self.describe_endpoint_config(endpoint_config_name)  # refuses a config that does not exist
        endpoint.endpoint_status = "Updating"
        endpoint.maas_pending_config = endpoint_config_name  # type: ignore[attr-defined]
        endpoint.maas_in_service_at = time.monotonic() + float(  # type: ignore[attr-defined]
            os.environ.get("MAAS_SAGEMAKER_UPDATE_SECONDS", "0")
        )
        finish(self, endpoint)
        return str(endpoint.arn)

    describe_endpoint = SageMakerModelBackend.describe_endpoint

    def describe_finished(self: SageMakerModelBackend, endpoint_name: str) -> Any:
        if endpoint_name in self.endpoints:
            finish(self, self.endpoints[endpoint_name])
        return describe_endpoint(self, endpoint_name)

    def respond(self: Any) -> ActionResult:
        arn = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": arn})

    SageMakerModelBackend.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    SageMakerModelBackend.describe_endpoint = describe_finished  # type: ignore[method-assign]
    SageMakerResponse.update_endpoint = respond  # type: ignore[attr-defined]


def _cloudformation_loopback_template_url() -> None:
    """Gap: moto reads a TemplateURL path-style only when its host says `localhost`; the CDK
    CLI, pointed at http://127.0.0.1:PORT, uploads large templates there and passes
    `http://127.0.0.1:PORT/<bucket>/<key>`, which moto misreads as bucket `127`."""
    from moto.cloudformation import responses
    from moto.cloudformation.utils import get_stack_from_s3_url

    def loopback_aware(template_url: str, account_id: str, partition: str) -> str:
        for loopback in ("://127.0.0.1:", "://127.0.0.1/"):
            template_url = template_url.replace(loopback, loopback.replace("127.0.0.1", "localhost"))
        return get_stack_from_s3_url(template_url, account_id=account_id, partition=partition)

    _install(responses, "get_stack_from_s3_url", loopback_aware)


def _cloudformation_resources() -> None:
    """Gap: moto's CloudFormation skips resource types it has no model for, and a Ref or
    GetAtt to a skipped resource fails the whole stack. The CDK stack of maas uses these:

    - AWS::DynamoDB::GlobalTable (CDK's TableV2), created as the DynamoDB table it is in one region;
    - AWS::Lambda::Alias, created as a real moto alias, so the API invokes `live`;
    - AWS::ApiGatewayV2::Api, Integration, Route, Stage, AWS::CloudWatch::Alarm, the
      Application Auto Scaling target and policy, and S3 bucket and SNS topic policies:
      recorded with their properties, so references resolve; moto cannot run them.
    """
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel

    if "AWS::DynamoDB::GlobalTable" in parsing.get_model_map():
        return
    # moto finds models through CloudFormationModel.__subclasses__(), which holds them weakly.
    _MODELS.append(_global_table_model(CloudFormationModel))
    _MODELS.append(_lambda_alias_model(CloudFormationModel))
    for resource_type, attributes in RECORDED_TYPES.items():
        _MODELS.append(_recorded_model(CloudFormationModel, resource_type, attributes))
    # moto caches its model list; new subclasses appear only once the caches are cleared.
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


_MODELS: list[type] = []

# Resource types recorded only, and the GetAtt attributes they answer (from the physical id).
RECORDED_TYPES: dict[str, tuple[str, ...]] = {
    "AWS::ApiGatewayV2::Api": ("ApiEndpoint", "ApiId"),
    "AWS::ApiGatewayV2::Integration": ("IntegrationId",),
    "AWS::ApiGatewayV2::Route": ("RouteId",),
    "AWS::ApiGatewayV2::Stage": (),
    "AWS::ApiGatewayV2::Authorizer": ("AuthorizerId",),
    "AWS::CloudWatch::Alarm": ("Arn",),
    "AWS::ApplicationAutoScaling::ScalableTarget": ("Id",),
    "AWS::ApplicationAutoScaling::ScalingPolicy": ("Arn",),
    "AWS::S3::BucketPolicy": (),
    "AWS::SNS::TopicPolicy": (),
    "AWS::SQS::QueuePolicy": (),
    "AWS::CDK::Metadata": (),
}


def _recorded_model(base: Any, resource_type: str, attributes: tuple[str, ...]) -> type:
    from moto.moto_api._internal import mock_random

    class Recorded(base):  # type: ignore[misc]
        def __init__(self, name: str, properties: dict[str, Any], region: str) -> None:
            self.name = name
            self.properties = properties
            self.region = region
            self.id = mock_random.get_random_hex(10)

        @staticmethod
        def cloudformation_type() -> str:
            return resource_type

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in attributes

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **_: Any,
        ) -> Recorded:
            recorded = cls(resource_name, cloudformation_json.get("Properties", {}), region_name)
            _serve_http_api(resource_type, recorded.id, recorded.properties, region_name)
            return recorded

        @classmethod
        def update_from_cloudformation_json(
            cls, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
            account_id: str, region_name: str,
        ) -> Recorded:  # fmt: skip
            original_resource.properties = cloudformation_json.get("Properties", {})
            return original_resource  # type: ignore[no-any-return]

        @classmethod
        def delete_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
        ) -> None:
            pass

        @property
        def physical_resource_id(self) -> str:
            return self.id

        def get_cfn_attribute(self, attribute_name: str) -> Any:
            if attribute_name == "ApiEndpoint":
                from maas.local.http_api import APIS

                return APIS.url(self.id)
            if attribute_name == "Arn":
                return f"arn:aws:{resource_type.split('::')[1].lower()}:{self.region}:123456789012:{self.id}"
            return self.id

    Recorded.__name__ = Recorded.__qualname__ = "Recorded" + resource_type.replace("::", "")
    return Recorded


def _serve_http_api(resource_type: str, resource_id: str, properties: dict[str, Any], region: str) -> None:
    """API Gateway v2 resources become a loopback gateway (maas.local.http_api) in `region`."""
    from maas.local.http_api import APIS

    if resource_type == "AWS::ApiGatewayV2::Api":
        APIS.url(resource_id)
    elif resource_type == "AWS::ApiGatewayV2::Integration":
        APIS.integration(str(properties["ApiId"]), resource_id, properties)
    elif resource_type == "AWS::ApiGatewayV2::Route":
        APIS.route(str(properties["ApiId"]), properties, region)


def _global_table_model(base: Any) -> type:
    from moto.dynamodb.models.table import Table

    class GlobalTable(base):  # type: ignore[misc]
        """One region of a global table: the DynamoDB table, with TableV2's properties mapped."""

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::DynamoDB::GlobalTable"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "TableName"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("Arn", "StreamArn", "TableId")

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> Any:
            properties = dict(cloudformation_json["Properties"])
            replica: dict[str, Any] = next(iter(properties.pop("Replicas", [])), {})
            properties["DeletionProtectionEnabled"] = replica.get("DeletionProtectionEnabled", False)
            properties["GlobalSecondaryIndexes"] = [
                {k: v for k, v in index.items() if not k.endswith("ThroughputSettings")}
                for index in properties.get("GlobalSecondaryIndexes", [])
            ]
            return Table.create_from_cloudformation_json(
                resource_name, {"Properties": properties}, account_id, region_name, **kwargs
            )

        @classmethod
        def delete_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
        ) -> None:
            Table.delete_from_cloudformation_json(resource_name, cloudformation_json, account_id, region_name)

    return GlobalTable


def _lambda_alias_model(base: Any) -> type:
    class LambdaAliasResource(base):  # type: ignore[misc]
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Lambda::Alias"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("AliasArn",)

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **_: Any,
        ) -> Any:
            from moto.awslambda.models import lambda_backends

            properties = cloudformation_json["Properties"]
            function = properties["FunctionName"].split(":function:")[-1].split(":")[0]
            resource = cls()
            resource.alias = lambda_backends[account_id][region_name].create_alias(
                name=properties["Name"],
                function_name=function,
                function_version=str(properties["FunctionVersion"]),
                description=properties.get("Description", ""),
                routing_config=properties.get("RoutingConfig"),
            )
            return resource

        @property
        def physical_resource_id(self) -> str:
            return str(self.alias.arn)  # Ref of an alias is its ARN

        def get_cfn_attribute(self, attribute_name: str) -> Any:
            return str(self.alias.arn)

    return LambdaAliasResource


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


# Real-time inference families newer than moto 5.2.5's list (which ends at g4dn and c6i).
CURRENT_INSTANCE_FAMILIES = (
    "g5",
    "g6",
    "g6e",
    "p4d",
    "p4de",
    "p5",
    "p5e",
    "inf2",
    "trn1",
    "c7i",
    "m7i",
    "r7i",
)


def _sagemaker_current_instance_types() -> None:
    """Gap: moto's endpoint configs refuse instance types newer than its list, among them
    ml.g5.xlarge, the default GPU of a maas SageMaker model."""
    from moto.sagemaker.models import FakeEndpointConfig

    original = FakeEndpointConfig.validate_instance_type

    def validate_instance_type(self: Any, instance_type: str) -> None:
        parts = instance_type.split(".")
        if len(parts) == 3 and parts[0] == "ml" and parts[1] in CURRENT_INSTANCE_FAMILIES:
            return
        original(self, instance_type)

    _install(FakeEndpointConfig, "validate_instance_type", validate_instance_type)


def _sagemaker_names_from_templates() -> None:
    """Gap: moto names a SageMaker endpoint (config, model) made by CloudFormation after its
    logical ID, ignoring `EndpointName`; maas finds an endpoint by that name."""
    from moto.cloudformation import parsing
    from moto.sagemaker.models import FakeEndpoint

    if FakeEndpoint.cloudformation_name_type() == "EndpointName":
        return
    FakeEndpoint.cloudformation_name_type = staticmethod(lambda: "EndpointName")  # type: ignore[method-assign]
    parsing.get_name_type_map.cache_clear()


def _cloudformation_outputs_after_change_sets() -> None:
    """Gap: moto evaluates a stack's outputs when the change set is created, before its
    resources exist, and not again when it is executed: `cdk deploy` then shows no outputs
    (API URL, bucket) and DescribeStacks returns none."""
    from moto.cloudformation.models import CloudFormationBackend

    original = CloudFormationBackend.execute_change_set

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        original(self, change_set_name, stack_name)
        for arn, change_set in self.change_sets.items():
            if change_set_name in (arn, change_set.change_set_name):
                stack = self.stacks[change_set.stack_id]
                stack._parse_template()  # the executed template, not the empty one it was created with
                stack.output_map = stack._create_output_map()

    _install(CloudFormationBackend, "execute_change_set", execute_change_set)


def _cloudformation_change_set_not_found() -> None:
    """Gap: DescribeChangeSet on a change set that does not exist answers moto's
    "Stack with id ... does not exist" ValidationError; AWS answers ChangeSetNotFound, which
    the CDK CLI expects before it creates the change set of an update deploy."""
    from moto.cloudformation.exceptions import CloudFormationError
    from moto.cloudformation.models import CloudFormationBackend

    original = CloudFormationBackend.describe_change_set

    class ChangeSetNotFound(CloudFormationError):
        code = "ChangeSetNotFound"

    def describe_change_set(self: Any, change_set_name: str) -> Any:
        known = change_set_name in self.change_sets or any(
            change_set.change_set_name == change_set_name for change_set in self.change_sets.values()
        )
        if not known:
            raise ChangeSetNotFound(f"ChangeSet [{change_set_name}] does not exist")
        return original(self, change_set_name)

    _install(CloudFormationBackend, "describe_change_set", describe_change_set)


def _cloudformation_previous_ssm_values() -> None:
    """Gap: on an update, a parameter of type AWS::SSM::Parameter::Value with UsePreviousValue
    (CDK's BootstrapVersion) reaches moto as the value it resolved to last time, which moto
    looks up again as a parameter name, finds nothing, and crashes (a 500 with an HTML body)."""
    from moto.cloudformation.parsing import ResourceMap
    from moto.ssm.models import ssm_backends

    original = ResourceMap.parse_ssm_parameter

    def parse_ssm_parameter(self: Any, value: str, value_type: str) -> Any:
        if ssm_backends[self._account_id][self._region_name].get_parameter(value) is None:
            return value  # already the resolved value
        return original(self, value, value_type)

    _install(ResourceMap, "parse_ssm_parameter", parse_ssm_parameter)


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
        "ResponseURL": str(event["ResponseURL"]).replace(docker_host, WORKERS.endpoint, 1),
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
    import atexit

    from moto.awslambda.models import LambdaFunction

    def invoke_locally(self: Any, event: Any = None) -> tuple[str, bool, str]:
        event = event if event is not None else {}
        if isinstance(event, dict) and "ResponseURL" in event:
            event = _custom_resource_event(event)
        result, errored = WORKERS.invoke(self, event)
        return result, errored, ""

    if _install(LambdaFunction, "_invoke_lambda", invoke_locally):
        atexit.register(WORKERS.stop)
