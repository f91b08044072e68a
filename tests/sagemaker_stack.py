"""A SageMaker endpoint made as the stack makes it, on the embedded AWS, for the tests of the
deployer and the reconciler."""

from __future__ import annotations

from typing import Any

import boto3

ROLE = "arn:aws:iam::123456789012:role/maas-endpoint"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def aws_client(service: str, url: str) -> Any:
    return boto3.client(service, endpoint_url=url, region_name="us-east-1")


def deploy_like_the_stack(url: str, bucket: str, name: str, version: int, *, scaling: bool = True) -> str:
    """What `cdk deploy` creates for a SageMaker model serving `version`: a model, a config, an
    endpoint tagged with its model and alias, and (with `scaling`) target-tracking autoscaling."""
    sagemaker = aws_client("sagemaker", url)
    endpoint = f"maas-{name}"
    sagemaker.create_model(
        ModelName=f"{endpoint}-stack",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": IMAGE,
            "ModelDataUrl": f"s3://{bucket}/artifacts/{name}/v{version}/model.tar.gz",
            "Environment": {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": name},
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{endpoint}-stack-config",
        ProductionVariants=[
            {
                "VariantName": f"v{version}",
                "ModelName": f"{endpoint}-stack",
                "InstanceType": "ml.g5.xlarge",
                "InitialInstanceCount": 1,
                "InitialVariantWeight": 100.0,
            }
        ],
    )
    sagemaker.create_endpoint(
        EndpointName=endpoint,
        EndpointConfigName=f"{endpoint}-stack-config",
        Tags=[{"Key": "maas:alias", "Value": "prod"}, {"Key": "maas:model", "Value": name}],
    )
    if scaling:
        autoscaling = aws_client("application-autoscaling", url)
        resource = f"endpoint/{endpoint}/variant/v{version}"
        autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=DIMENSION,
            MinCapacity=1,
            MaxCapacity=4,
        )
        autoscaling.put_scaling_policy(
            PolicyName="Invocations",
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 100.0,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
            },
        )
    return endpoint


def scaled_variants(url: str, endpoint: str) -> dict[str, tuple[int, int]]:
    """Variant -> (min, max) instances of every scalable target of `endpoint`."""
    targets = aws_client("application-autoscaling", url).describe_scalable_targets(
        ServiceNamespace="sagemaker"
    )["ScalableTargets"]
    return {
        t["ResourceId"].rsplit("/", 1)[-1]: (t["MinCapacity"], t["MaxCapacity"])
        for t in targets
        if t["ResourceId"].startswith(f"endpoint/{endpoint}/")
    }
