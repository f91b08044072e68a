"""Each extension of moto's server in maas.local.moto_gaps, tested on its own."""

from __future__ import annotations

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
