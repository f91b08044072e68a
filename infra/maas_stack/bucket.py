"""`ArtifactBucket`: the S3 bucket holding model artifacts, and its access-log bucket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from maas_stack.nag import acknowledge

if TYPE_CHECKING:
    from maas.config import StorageConfig


class ArtifactBucket(Construct):
    """Encrypted, versioned, public access blocked, TLS enforced, access logged; old object
    versions, unfinished multipart uploads and per-prefix files expire as `storage` says."""

    def __init__(self, scope: Construct, construct_id: str, *, storage: StorageConfig) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            reason="This is the access-log bucket itself; logging it to itself would loop.",
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=lifecycle_rules(storage),
            removal_policy=RemovalPolicy.RETAIN,
        )


def lifecycle_rules(storage: StorageConfig) -> list[s3.LifecycleRule]:
    """Versioning keeps every overwritten object (each batch re-upload, each manifest) and
    multipart uploads that never finish are billed: both expire. Artifacts are current
    objects and stay; uploads never registered, batch files and capture expire by prefix."""
    rules = [
        s3.LifecycleRule(
            id="noncurrent-versions",
            noncurrent_version_expiration=Duration.days(storage.noncurrent_version_days),
            abort_incomplete_multipart_upload_after=Duration.days(storage.incomplete_upload_days),
        ),
        s3.LifecycleRule(id="uploads", prefix="uploads/", expiration=Duration.days(storage.uploads_days)),
    ]
    by_prefix = {
        "inputs/": storage.inputs_days,
        "outputs/": storage.outputs_days,
        "errors/": storage.errors_days,
        "datacapture/": storage.data_capture_days,
    }
    for prefix, days in by_prefix.items():
        if days is not None:
            rules.append(
                s3.LifecycleRule(id=prefix.rstrip("/"), prefix=prefix, expiration=Duration.days(days))
            )
    return rules
