"""The model registry: immutable versions and aliases in DynamoDB, artifacts in S3."""

from maas.registry.artifacts import ArtifactStore, sha256_of
from maas.registry.dynamodb import DynamoDBStore, table_definition
from maas.registry.memory import InMemoryStore
from maas.registry.models import Alias, AliasChange, ModelVersion, Page, Target, VersionStatus
from maas.registry.service import Registry
from maas.registry.source import RegistrySource
from maas.registry.store import MAX_ALIAS_VERSIONS, ModelHead, RegistryStore, UnreadableRecord

__all__ = [
    "MAX_ALIAS_VERSIONS",
    "Alias",
    "AliasChange",
    "ArtifactStore",
    "DynamoDBStore",
    "InMemoryStore",
    "ModelHead",
    "ModelVersion",
    "Page",
    "Registry",
    "RegistrySource",
    "RegistryStore",
    "Target",
    "UnreadableRecord",
    "VersionStatus",
    "sha256_of",
    "table_definition",
]
