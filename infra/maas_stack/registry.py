"""`ModelRegistry`: the DynamoDB table of model versions and aliases."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from maas.registry.dynamodb import MODELS_INDEX


class ModelRegistry(Construct):
    """One TableV2 (pk/sk plus the `models` index, as `maas.registry.dynamodb` expects),
    with point-in-time recovery, AWS-managed encryption, deletion protection, a stream
    (for the reconciler and global replicas) and optional replica regions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deletion_protection: bool = True,
        replica_regions: list[str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        string = dynamodb.AttributeType.STRING
        self.table = dynamodb.TableV2(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=string),
            sort_key=dynamodb.Attribute(name="sk", type=string),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=deletion_protection,
            # The registry is the source of truth for what is served: never delete it with the stack.
            removal_policy=RemovalPolicy.RETAIN,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=MODELS_INDEX,
                    partition_key=dynamodb.Attribute(name="gsi1pk", type=string),
                    sort_key=dynamodb.Attribute(name="gsi1sk", type=string),
                )
            ],
            # The reconciler's trigger (it reads only the keys, then the aliases themselves); what
            # global tables replicate by, which is why it carries both images.
            dynamo_stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            replicas=[dynamodb.ReplicaTableProps(region=region) for region in replica_regions or []],
        )
