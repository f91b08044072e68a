"""The model registry: immutable versions and aliases in DynamoDB, artifacts in S3."""

from maas.registry.artifacts import ArtifactStore, sha256_of
from maas.registry.dynamodb import DynamoDBStore, table_definition
from maas.registry.memory import InMemoryStore
from maas.registry.models import Alias, AliasChange, ModelVersion, Page, Target, VersionStatus
from maas.registry.service import Registry
from maas.registry.source import RegistrySource
from maas.registry.store import ModelHead, RegistryStore

__all__ = [
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
    "VersionStatus",
    "sha256_of",
    "table_definition",
]
