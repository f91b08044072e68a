"""Pack a registered ONNX version as a Triton model repository (`model.tar.gz`) in S3.

The package sits under the model's artifact prefix, keyed by version rather than by
content: `cdk deploy` names the first version an endpoint serves by number, before any
package exists to hash, and a version never changes once registered.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from maas.errors import ArtifactError, InvalidInput
from maas.sagemaker.triton import TritonOptions, model_config

if TYPE_CHECKING:
    from maas.registry.models import ModelVersion
    from maas.registry.service import Registry


def package_key(name: str, version: int) -> str:
    return f"artifacts/{name}/v{version}/model.tar.gz"


def write_package(target: Path, record: ModelVersion, model_file: Path, options: TritonOptions) -> Path:
    """Write `<name>/config.pbtxt` and `<name>/1/model.onnx` into the tarball `target`."""
    if record.framework != "onnx" or model_file.suffix != ".onnx":
        raise InvalidInput(
            f"model '{record.name}' version {record.version} is {record.framework} ('{model_file.name}'); "
            "SageMaker endpoints run Triton's ONNX Runtime backend, so register an .onnx file"
        )
    config = model_config(record.name, record.signature, options).encode()
    with tarfile.open(target, "w:gz") as archive:
        info = tarfile.TarInfo(f"{record.name}/config.pbtxt")
        info.size = len(config)
        archive.addfile(info, io.BytesIO(config))
        archive.add(model_file, arcname=f"{record.name}/1/model.onnx")
    return target


def package_version(registry: Registry, record: ModelVersion, options: TritonOptions | None = None) -> str:
    """Build the Triton package of `record` and upload it; returns its S3 key.

    Building again replaces the package (for new batching options); the endpoint picks
    it up when it next creates a SageMaker model for the version.
    """
    artifacts = registry.artifacts
    with tempfile.TemporaryDirectory(prefix="maas-package-") as scratch:
        model_file = artifacts.fetch(record.artifact_key, record.sha256, Path(scratch))
        tarball = write_package(
            Path(scratch) / "model.tar.gz", record, model_file, options or TritonOptions()
        )
        key = package_key(record.name, record.version)
        artifacts.client.upload_file(str(tarball), artifacts.bucket, key)
    return key


def require_package(registry: Registry, name: str, version: int) -> str:
    """The S3 URL of the package of `name` version `version`; raises ArtifactError if it is missing."""
    key = package_key(name, version)
    if not registry.artifacts.exists(key):
        raise ArtifactError(
            f"s3://{registry.artifacts.bucket}/{key} is missing; build it with "
            f"`maas models package {name} {version}`"
        )
    return f"s3://{registry.artifacts.bucket}/{key}"
