"""Each extension of moto's server in maas.local.moto, tested on its own."""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions
import pytest

from tests.functional.conftest import aws_client


def test_update_endpoint_re_points_an_endpoint_at_another_config(aws_endpoint: str) -> None:
    sagemaker = aws_client("sagemaker", aws_endpoint)
    for name in ("gap-a", "gap-b"):
        sagemaker.create_model(
            ModelName=name,
            ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
            PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[
                {
                    "VariantName": name,
                    "ModelName": name,
                    "InstanceType": "ml.c5.xlarge",
                    "InitialInstanceCount": 2,
                }
            ],
        )
    sagemaker.create_endpoint(EndpointName="gap-endpoint", EndpointConfigName="gap-a-config")

    sagemaker.update_endpoint(EndpointName="gap-endpoint", EndpointConfigName="gap-b-config")

    described = sagemaker.describe_endpoint(EndpointName="gap-endpoint")
    assert described["EndpointConfigName"] == "gap-b-config"
    assert described["EndpointStatus"] == "InService"
    assert [(v["VariantName"], v["CurrentInstanceCount"]) for v in described["ProductionVariants"]] == [
        ("gap-b", 2)
    ]


def test_update_endpoint_names_what_is_missing(aws_endpoint: str) -> None:
    sagemaker = aws_client("sagemaker", aws_endpoint)
    with pytest.raises(botocore.exceptions.ClientError, match="Could not find endpoint"):
        sagemaker.update_endpoint(EndpointName="no-such-endpoint", EndpointConfigName="gap-a-config")


def deploy(aws_endpoint: str, name: str, template: dict[str, Any]) -> dict[str, str]:
    """Create `template` through a change set, as `cdk deploy` does; its outputs."""
    cloudformation = aws_client("cloudformation", aws_endpoint)
    created = cloudformation.create_change_set(
        StackName=name, ChangeSetName="deploy", ChangeSetType="CREATE", TemplateBody=json.dumps(template)
    )
    cloudformation.execute_change_set(ChangeSetName=created["Id"], StackName=name)
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def test_outputs_are_resolved_when_a_change_set_is_executed(aws_endpoint: str) -> None:
    template = {
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {"Name": {"Value": {"Ref": "Bucket"}}},
    }
    outputs = deploy(aws_endpoint, "gap-outputs", template)
    assert outputs["Name"] in {b["Name"] for b in aws_client("s3", aws_endpoint).list_buckets()["Buckets"]}


def test_a_template_url_on_the_loopback_address_is_read_path_style(aws_endpoint: str) -> None:
    s3 = aws_client("s3", aws_endpoint)
    s3.create_bucket(Bucket="gap-templates")
    template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}
    s3.put_object(Bucket="gap-templates", Key="t/template.json", Body=json.dumps(template).encode())
    cloudformation = aws_client("cloudformation", aws_endpoint)
    cloudformation.create_stack(
        StackName="gap-url", TemplateURL=f"{aws_endpoint}/gap-templates/t/template.json"
    )
    resources = cloudformation.list_stack_resources(StackName="gap-url")["StackResourceSummaries"]
    assert [r["ResourceType"] for r in resources] == ["AWS::SQS::Queue"]


def test_cdk_resources_moto_lacks_are_created_or_recorded_so_references_resolve(aws_endpoint: str) -> None:
    template = {
        "Resources": {
            "Table": {
                "Type": "AWS::DynamoDB::GlobalTable",
                "Properties": {
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "Replicas": [{"Region": "us-east-1", "DeletionProtectionEnabled": True}],
                },
            },
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
            },
            "Function": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Code": {"ZipFile": "def handler(event, context):\n    return 1\n"},
                },
            },
            "Version": {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "Function"}}},
            "Live": {
                "Type": "AWS::Lambda::Alias",
                "Properties": {
                    "FunctionName": {"Ref": "Function"},
                    "FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]},
                    "Name": "live",
                },
            },
            "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Name": "api", "ProtocolType": "HTTP"}},
            "Integration": {
                "Type": "AWS::ApiGatewayV2::Integration",
                "Properties": {"ApiId": {"Ref": "Api"}, "IntegrationUri": {"Ref": "Live"}},
            },
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {"Dimensions": [{"Value": {"Ref": "Api"}}]},
            },
        },
        "Outputs": {
            "TableArn": {"Value": {"Fn::GetAtt": ["Table", "Arn"]}},
            "AliasArn": {"Value": {"Ref": "Live"}},
            "ApiUrl": {"Value": {"Fn::GetAtt": ["Api", "ApiEndpoint"]}},
            "Integration": {"Value": {"Ref": "Integration"}},
        },
    }
    outputs = deploy(aws_endpoint, "gap-resources", template)
    table = outputs["TableArn"].rsplit("/", 1)[-1]
    described = aws_client("dynamodb", aws_endpoint).describe_table(TableName=table)["Table"]
    assert described["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert described["DeletionProtectionEnabled"] is True
    assert outputs["AliasArn"].endswith(":live")
    function = outputs["AliasArn"].split(":function:")[1].split(":")[0]
    alias = aws_client("lambda", aws_endpoint).get_alias(FunctionName=function, Name="live")
    assert alias["FunctionVersion"] == "1"
    assert outputs["ApiUrl"].startswith("http://127.0.0.1:")  # a loopback gateway (maas.local.http_api)
    assert outputs["Integration"]


def test_current_gpu_instance_types_are_accepted(aws_endpoint: str) -> None:
    sagemaker = aws_client("sagemaker", aws_endpoint)
    sagemaker.create_model(
        ModelName="gap-g5",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="gap-g5",
        ProductionVariants=[
            {
                "VariantName": "v1",
                "ModelName": "gap-g5",
                "InstanceType": "ml.g5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    with pytest.raises(botocore.exceptions.ClientError, match="instanceType"):
        sagemaker.create_endpoint_config(
            EndpointConfigName="gap-bad",
            ProductionVariants=[
                {
                    "VariantName": "v1",
                    "ModelName": "gap-g5",
                    "InstanceType": "ml.nope.xlarge",
                    "InitialInstanceCount": 1,
                }
            ],
        )


def test_an_endpoint_made_by_a_template_keeps_its_endpoint_name(aws_endpoint: str) -> None:
    template = {
        "Resources": {
            "Model": {
                "Type": "AWS::SageMaker::Model",
                "Properties": {
                    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r",
                    "PrimaryContainer": {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
                },
            },
            "Config": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {
                    "ProductionVariants": [
                        {"VariantName": "v1", "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                         "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1, "InitialVariantWeight": 1}
                    ]
                },
            },
            "Endpoint": {
                "Type": "AWS::SageMaker::Endpoint",
                "Properties": {
                    "EndpointName": "gap-named-endpoint",
                    "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]},
                },
            },
        }
    }  # fmt: skip
    deploy(aws_endpoint, "gap-sagemaker", template)
    described = aws_client("sagemaker", aws_endpoint).describe_endpoint(EndpointName="gap-named-endpoint")
    assert described["EndpointStatus"] == "InService"


def test_describing_a_change_set_that_does_not_exist_says_so(aws_endpoint: str) -> None:
    cloudformation = aws_client("cloudformation", aws_endpoint)
    with pytest.raises(cloudformation.exceptions.ChangeSetNotFoundException):
        cloudformation.describe_change_set(ChangeSetName="gap-never-created", StackName="gap-nothing")


def update(aws_endpoint: str, name: str, template: dict[str, Any], parameters: list[dict[str, Any]]) -> None:
    cloudformation = aws_client("cloudformation", aws_endpoint)
    created = cloudformation.create_change_set(
        StackName=name, ChangeSetName="update", ChangeSetType="UPDATE",
        TemplateBody=json.dumps(template), Parameters=parameters,
    )  # fmt: skip
    cloudformation.execute_change_set(ChangeSetName=created["Id"], StackName=name)
    assert cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"


def test_an_update_keeps_an_ssm_parameter_with_its_previous_value_and_updates_a_layered_function(
    aws_endpoint: str,
) -> None:
    aws_client("ssm", aws_endpoint).put_parameter(Name="/gap/version", Value="30", Type="String")

    def template(memory: int) -> dict[str, Any]:
        return {
            "Parameters": {
                "Version": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/gap/version"}
            },
            "Resources": {
                "Role": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
                },
                "Layer": {
                    "Type": "AWS::Lambda::LayerVersion",
                    "Properties": {"Content": {"S3Bucket": "gap-layers", "S3Key": "layer.zip"}},
                },
                "Function": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Runtime": "python3.12",
                        "Handler": "index.handler",
                        "MemorySize": memory,
                        "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                        "Layers": [{"Ref": "Layer"}],
                        # From S3, as CDK ships code (moto cannot update inline ZipFile code).
                        "Code": {"S3Bucket": "gap-layers", "S3Key": "function.zip"},
                    },
                },
            },
            "Outputs": {"Function": {"Value": {"Ref": "Function"}}},
        }

    s3 = aws_client("s3", aws_endpoint)
    s3.create_bucket(Bucket="gap-layers")
    s3.put_object(Bucket="gap-layers", Key="layer.zip", Body=zip_of("python/gap.py", b"X = 1\n"))
    s3.put_object(
        Bucket="gap-layers",
        Key="function.zip",
        Body=zip_of("index.py", b"def handler(e, c):\n    return 1\n"),
    )
    outputs = deploy(aws_endpoint, "gap-update", template(512))
    # As the CDK CLI sends it: the bootstrap version parameter keeps its previous value.
    update(
        aws_endpoint, "gap-update", template(1024), [{"ParameterKey": "Version", "UsePreviousValue": True}]
    )
    function = aws_client("lambda", aws_endpoint).get_function(FunctionName=outputs["Function"])
    assert function["Configuration"]["MemorySize"] == 1024


def zip_of(name: str, content: bytes) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


HANDLER = b"""
import os
import boto3

def handler(event, context):
    print("a log line, not part of the answer")
    if event.get("fail"):
        raise ValueError("asked to fail")
    buckets = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    return {"event": event, "pid": os.getpid(), "table": os.environ["TABLE"], "sees_gap_bucket": "gap-lambda" in buckets}
"""


def test_a_function_runs_in_a_warm_local_python_process_that_calls_the_emulator_back(
    aws_endpoint: str,
) -> None:
    aws_client("s3", aws_endpoint).create_bucket(Bucket="gap-lambda")
    role = aws_client("iam", aws_endpoint).create_role(
        RoleName="gap-lambda", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )["Role"]["Arn"]
    functions = aws_client("lambda", aws_endpoint)
    functions.create_function(
        FunctionName="gap-local",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": zip_of("app.py", HANDLER)},
        Environment={"Variables": {"TABLE": "registry"}},
    )
    answers = []
    for n in range(2):
        response = functions.invoke(FunctionName="gap-local", Payload=json.dumps({"n": n}).encode())
        assert "FunctionError" not in response
        answers.append(json.loads(response["Payload"].read()))
    assert [a["event"] for a in answers] == [{"n": 0}, {"n": 1}]
    assert answers[0]["table"] == "registry" and answers[0]["sees_gap_bucket"] is True
    assert answers[0]["pid"] == answers[1]["pid"]  # warm: the same process served both

    failed = functions.invoke(FunctionName="gap-local", Payload=json.dumps({"fail": True}).encode())
    assert failed["FunctionError"]
    assert json.loads(failed["Payload"].read()) == {
        "errorMessage": "asked to fail",
        "errorType": "ValueError",
    }


def test_a_custom_resource_event_reaches_the_emulator_and_has_string_properties() -> None:
    from moto import settings

    from maas.local.lambda_containers import containers
    from maas.local.moto.awslambda import _custom_resource_event

    docker_host = f"{settings.moto_server_host()}:{settings.moto_server_port()}"
    event = {
        "RequestType": "Create",
        "ResponseURL": f"{docker_host}/cloudformation_us-east-1/cfnresponse?stack=s",
        "ResourceProperties": {"Managed": True, "Count": 3, "Nested": [{"Flag": False}], "Name": "n"},
    }
    sent = _custom_resource_event(event)
    assert sent["ResponseURL"] == f"{containers().endpoint}/cloudformation_us-east-1/cfnresponse?stack=s"
    assert sent["ResourceProperties"] == {
        "Managed": "true",
        "Count": "3",
        "Nested": [{"Flag": "false"}],
        "Name": "n",
    }


def test_emf_records_in_a_functions_log_become_cloudwatch_metrics(aws_endpoint: str) -> None:
    import time

    from maas.local.lambda_containers import put_emf_metrics

    record = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "GapEmf",
                    "Dimensions": [["model"]],
                    "Metrics": [{"Name": "Served", "Unit": "Count"}],
                }
            ],
        },
        "model": "digits",
        "Served": [1, 1],
    }
    put_emf_metrics(aws_endpoint, record)
    listed = aws_client("cloudwatch", aws_endpoint).list_metrics(Namespace="GapEmf")["Metrics"]
    assert [(m["MetricName"], m["Dimensions"]) for m in listed] == [
        ("Served", [{"Name": "model", "Value": "digits"}])
    ]


def test_s3_notifications_name_the_object_version_and_a_sequencer_per_upload(aws_endpoint: str) -> None:
    s3, sqs = aws_client("s3", aws_endpoint), aws_client("sqs", aws_endpoint)
    bucket = "gap-notifications"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    queue = sqs.create_queue(QueueName="gap-notifications")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    versions = [s3.put_object(Bucket=bucket, Key="k", Body=b"same")["VersionId"] for _ in range(2)]
    objects = []
    while len(objects) < 2:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            objects += [r["s3"]["object"] for r in json.loads(message["Body"]).get("Records", [])]
    assert [o["versionId"] for o in objects] == versions
    assert objects[0]["eTag"] == objects[1]["eTag"]
    assert objects[0]["sequencer"] < objects[1]["sequencer"]


def test_a_multipart_upload_is_notified_once_as_aws_does(aws_endpoint: str) -> None:
    # moto also sent ObjectCreated:Put for it: every batch file above boto3's 8 MB multipart
    # threshold ran twice on maas dev (a split file was planned twice).
    s3, sqs = aws_client("s3", aws_endpoint), aws_client("sqs", aws_endpoint)
    bucket = "gap-multipart"
    s3.create_bucket(Bucket=bucket)
    queue = sqs.create_queue(QueueName="gap-multipart")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    etags = [
        s3.upload_part(
            Bucket=bucket, Key="big", UploadId=upload, PartNumber=number, Body=b"x" * 5 * 1024 * 1024
        )["ETag"]
        for number in (1, 2)
    ]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big",
        UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, start=1)]},
    )
    s3.put_object(Bucket=bucket, Key="small", Body=b"x")  # a plain upload still notifies
    events = []
    for _ in range(3):
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            events += [
                (r["eventName"], r["s3"]["object"]["key"])
                for r in json.loads(message["Body"]).get("Records", [])
            ]
    assert sorted(events) == [
        ("ObjectCreated:CompleteMultipartUpload", "big"),
        ("ObjectCreated:Put", "small"),
    ]
