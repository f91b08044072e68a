"""Where moto's server lacks what maas needs: small extensions, one module per service, each
naming the gap it fills. They are installed into moto's classes when the embedded AWS starts
(maas.local.aws), and each has its own test in tests/functional/test_moto_gaps.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maas.local.moto import awslambda, cloudformation, dynamodb, s3, sagemaker

if TYPE_CHECKING:
    from maas.local.lambda_containers import LambdaContainers


def install(lambda_containers: LambdaContainers) -> None:
    """Install every extension (idempotent: an extension steps aside once moto has the call).
    Deployed functions run in `lambda_containers`, which the embedded AWS owns."""
    sagemaker.install()
    cloudformation.install()
    awslambda.install(lambda_containers)
    s3.install()
    dynamodb.install()


__all__ = ["install"]
