"""One S3 object of inputs in; predictions, errors and a manifest out, streamed in chunks.

`inputs/<model>/[<alias or version>/]<path>` is read and predicted by the model (its
default alias unless the path names one); `outputs/<model>/.../<path>` receives one
prediction per good row, in order, `errors/<model>/.../<path>.errors.jsonl` one line per
bad row (row number and reason), and `outputs/.../<path>.manifest.json` the counts. A file
that cannot be processed at all (unknown model, unreadable format) gets a manifest with
`status: failed` and the reason at the same place, so whoever waits for it learns why.
Memory stays bounded by the chunk size whatever the file size: rows are read lazily and
results go to local files that are uploaded at the end.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.batch.chunks import read_chunks
from maas.batch.formats import format_of
from maas.batch.predicting import predict_chunk
from maas.batch.writers import OutputWriter
from maas.errors import InvalidInput, MaasError, ModelNotFound

if TYPE_CHECKING:
    from maas.dataplane import DataPlane
    from maas.names import ModelRef
    from maas.runtimes import Runtime, Signature

logger = logging.getLogger(__name__)

INPUTS, OUTPUTS, ERRORS = "inputs/", "outputs/", "errors/"
DEFAULT_CHUNK = 1024
SUCCEEDED, FAILED = "succeeded", "failed"


@dataclass(frozen=True)
class Manifest:
    """What became of one input file. A failed file has `reason` and no version or output."""

    model: str
    version: str | None
    sha256: str | None
    input: str
    output: str | None
    errors: str | None
    rows_in: int
    rows_out: int
    rows_failed: int
    duration_seconds: float
    status: str = SUCCEEDED
    reason: str | None = None
    # The S3 version of the input that ran: tells a submitter its upload from an earlier one.
    input_version: str | None = None
    # The alias or version the path named, None when its folders named none.
    alias: str | None = None
    # A file run as parts (maas.batch.split): each part's rows and files; absent otherwise.
    parts: list[dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The manifest as written: `parts` only for a file run as parts."""
        written = asdict(self)
        if self.parts is None:
            del written["parts"]
        return written


def split_key(key: str, dataplane: DataPlane) -> tuple[str, str | None, str]:
    """(model, alias or version or None, path below it) of an input key."""
    if not key.startswith(INPUTS):
        raise InvalidInput(f"batch inputs live under {INPUTS}, not at '{key}'")
    parts = key[len(INPUTS) :].split("/")
    if len(parts) < 2 or not all(parts) or ".." in parts:
        raise InvalidInput(f"'{key}' must look like inputs/<model>/[<alias or version>/]<file>")
    model, rest = parts[0], parts[1:]
    if len(rest) >= 2:
        try:
            dataplane.source.resolve(model, rest[0])
            return model, rest[0], "/".join(rest[1:])
        except (ModelNotFound, InvalidInput):
            pass  # an ordinary folder (`2024 q1/`), not an alias or version of the model
    return model, None, "/".join(rest)


def output_key(model: str, selector: str | None, relative: str) -> str:
    """Where the predictions for `inputs/<model>/[<selector>/]<relative>` go (`.npy` in, `.npz` out);
    its manifest is this key plus `.manifest.json`."""
    prefix = f"{model}/{selector}/" if selector else f"{model}/"
    if relative.endswith(".npy"):
        relative = relative[: -len(".npy")] + ".npz"
    return OUTPUTS + prefix + relative


def errors_key_of(model: str, selector: str | None, relative: str) -> str:
    """Where the rows of `inputs/<model>/[<selector>/]<relative>` that failed are listed."""
    return ERRORS + (f"{model}/{selector}/" if selector else f"{model}/") + relative + ".errors.jsonl"


def rows_per_call(model: str, signature: Signature) -> int | None:
    """The number of rows every call must carry when the model's first dimension is fixed
    (`[8, 4]`), or None when it is dynamic; InvalidInput when the inputs disagree."""
    firsts = {spec.shape[0] if spec.shape else -1 for spec in signature.inputs}
    if firsts <= {-1}:
        return None
    if len(firsts) > 1:
        shapes = ", ".join(f"'{spec.name}' {list(spec.shape)}" for spec in signature.inputs)
        raise InvalidInput(
            f"model '{model}' has inputs with different first dimensions ({shapes}); a batch file "
            "feeds rows along one first dimension shared by every input"
        )
    (fixed,) = firsts
    return fixed


class BatchProcessor:
    def __init__(self, dataplane: DataPlane, s3: Any, *, chunk_size: int = DEFAULT_CHUNK) -> None:
        self.dataplane = dataplane
        self.s3 = s3
        self.chunk_size = chunk_size

    def model_version(self, key: str, draw_key: str | None = None) -> str:
        """The version that would run `key` now; under a canary one draw of its arms, the
        same for the same `draw_key` (the upload), so a redelivery draws what the first did."""
        model, selector, _ = split_key(key, self.dataplane)
        return self.dataplane.source.resolve(model, selector, draw_key=draw_key).version

    def is_current(self, bucket: str, key: str, version_id: str | None, etag: str) -> bool:
        """Whether the upload a notification names is still the object at `key`: a late
        notification of an older upload must not overwrite the newer one's outputs. A key
        that cannot be read counts as current, so reading it fails and is retried."""
        from botocore.exceptions import ClientError

        try:
            head = self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError:
            return True
        if version_id and head.get("VersionId"):
            return bool(head["VersionId"] == version_id)
        return not etag or head.get("ETag", "").strip('"') == etag.strip('"')

    def lambda_version(self, model: str, selector: str | None) -> ModelRef:
        """The version `selector` names (None: the default alias); InvalidInput if it targets
        anything but Lambda."""
        ref = self.dataplane.source.resolve(model, selector)
        if ref.target != "lambda":
            raise InvalidInput(
                f"model '{model}' version {ref.version} targets {ref.target}; batch files for SageMaker "
                "endpoints are not supported yet, register a Lambda version to run this file"
            )
        return ref

    def process(
        self, bucket: str, key: str, version_id: str | None = None, *, model_version: str | None = None
    ) -> Manifest:
        """Predict every row of `s3://bucket/key` with `model_version` if given (else the version
        the path selects); raises MaasError when the file as a whole cannot be processed
        (unknown model, unreadable format). Row problems go to errors."""
        started = time.perf_counter()
        model, selector, relative = split_key(key, self.dataplane)
        suffix = format_of(key)
        ref = self.lambda_version(model, model_version or selector)
        outputs_at = output_key(model, selector, relative)
        errors_key = errors_key_of(model, selector, relative)
        # Held for the whole file: the load cache must not evict the version under it.
        with self.dataplane.serving(ref) as runtime:
            counts = self._predict_file(
                runtime,
                model,
                (bucket, key, version_id),
                suffix,
                outputs_at=outputs_at,
                errors_key=errors_key,
            )
        manifest = Manifest(
            model=model,
            version=ref.version,
            sha256=ref.cache_key,
            input=key,
            output=outputs_at,
            errors=errors_key if counts["failed"] else None,
            rows_in=counts["in"],
            rows_out=counts["out"],
            rows_failed=counts["failed"],
            duration_seconds=round(time.perf_counter() - started, 3),
            input_version=version_id,
            alias=selector,
        )
        self.write_manifest(bucket, outputs_at, manifest)
        logger.info(
            "batch %s: %d rows in, %d out, %d failed", key, counts["in"], counts["out"], counts["failed"]
        )
        return manifest

    def _predict_file(
        self,
        runtime: Runtime,
        model: str,
        source_object: tuple[str, str, str | None],
        suffix: str,
        *,
        outputs_at: str,
        errors_key: str,
    ) -> dict[str, int]:
        """Downloads the input, predicts it chunk by chunk and uploads outputs and errors; the counts."""
        bucket, key, version_id = source_object
        with tempfile.TemporaryDirectory(prefix="maas-batch-") as scratch:
            source = Path(scratch) / f"input{suffix}"
            extra = {"VersionId": version_id} if version_id else None
            self.s3.download_file(bucket, key, str(source), ExtraArgs=extra)
            return self.predict_local(
                runtime, model, source, suffix, bucket=bucket, outputs_at=outputs_at, errors_key=errors_key
            )

    def predict_local(
        self,
        runtime: Runtime,
        model: str,
        source: Path,
        suffix: str,
        *,
        bucket: str,
        outputs_at: str,
        errors_key: str,
        first_row: int = 0,
    ) -> dict[str, int]:
        """Predicts the rows of the local file `source` (numbered from `first_row`) chunk by chunk
        and uploads outputs to `outputs_at` and, if any row failed, errors to `errors_key`; the counts."""
        group = rows_per_call(model, runtime.signature)
        chunk_size = self.chunk_size if group is None else max(group, self.chunk_size // group * group)
        scratch = source.parent
        writer = OutputWriter(scratch / f"output{'.npz' if suffix == '.npy' else suffix}", suffix)
        errors_path = scratch / "errors.jsonl"
        counts = {"in": 0, "out": 0, "failed": 0}
        with errors_path.open("w") as errors:
            for chunk in read_chunks(source, suffix, runtime.signature, chunk_size, first_row=first_row):
                counts["in"] += chunk.size
                done, failed = predict_chunk(runtime, chunk, group)
                for numbers, outputs in done:
                    writer.write_chunk(numbers, outputs)
                    counts["out"] += len(numbers)
                for number, error in failed:
                    errors.write(json.dumps({"row": number, "error": error}) + "\n")
                counts["failed"] += len(failed)
        writer.close()
        self.s3.upload_file(str(writer.path), bucket, outputs_at)
        if counts["failed"]:
            self.s3.upload_file(str(errors_path), bucket, errors_key)
        return counts

    def record_failure(
        self, bucket: str, key: str, reason: str, version_id: str | None = None
    ) -> Manifest | None:
        """Writes a `status: failed` manifest with `reason` where the file's manifest would be,
        for a file that can never be processed as it is; None for a key no manifest can name."""
        try:
            model, selector, relative = split_key(key, self.dataplane)
        except MaasError:
            logger.error(
                "batch %s cannot be processed and names no model to report it under: %s", key, reason
            )
            return None
        manifest = Manifest(
            model=model,
            version=None,
            sha256=None,
            input=key,
            output=None,
            errors=None,
            rows_in=0,
            rows_out=0,
            rows_failed=0,
            duration_seconds=0.0,
            status=FAILED,
            reason=reason,
            input_version=version_id,
            alias=selector,
        )
        self.write_manifest(bucket, output_key(model, selector, relative), manifest)
        logger.error("batch %s failed: %s", key, reason)
        return manifest

    def write_manifest(self, bucket: str, outputs_at: str, manifest: Manifest) -> None:
        self.s3.put_object(
            Bucket=bucket,
            Key=outputs_at + ".manifest.json",
            Body=json.dumps(manifest.as_dict(), indent=2).encode(),
            ContentType="application/json",
        )
