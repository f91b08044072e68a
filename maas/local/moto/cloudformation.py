"""moto's CloudFormation: the resource types a CDK app of maas deploys, and its change sets."""

from __future__ import annotations

from typing import Any

from maas.local.moto.patching import replace


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

    replace(responses, "get_stack_from_s3_url", loopback_aware)


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

    replace(CloudFormationBackend, "execute_change_set", execute_change_set)


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

    replace(CloudFormationBackend, "describe_change_set", describe_change_set)


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

    replace(ResourceMap, "parse_ssm_parameter", parse_ssm_parameter)


def install() -> None:
    """Every extension of this service (idempotent)."""
    _cloudformation_loopback_template_url()
    _cloudformation_resources()
    _cloudformation_outputs_after_change_sets()
    _cloudformation_change_set_not_found()
    _cloudformation_previous_ssm_values()
