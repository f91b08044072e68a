"""One S3 object of inputs in; predictions, errors and a manifest out, streamed in chunks.

`inputs/<model>/[<alias or version>/]<path>` is read and predicted by the model (its
default alias unless the path names one); `outputs/<model>/.../<path>` receives one
prediction per good row, in order, `errors/<model>/.../<path>.errors.jsonl` one line per
bad row (row number and reason), and `outputs/.../<path>.manifest.json` the counts. Memory
stays bounded by the chunk size whatever the file size: rows are read lazily and results
go to local files that are uploaded at the end.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.batch.formats import OutputWriter, Row, format_of, read_rows
from maas.errors import InvalidInput, MaasError, ModelNotFound

if TYPE_CHECKING:
    from collections.abc import Iterator

    from maas.dataplane import DataPlane
    from maas.runtimes import Runtime

logger = logging.getLogger(__name__)

INPUTS, OUTPUTS, ERRORS = "inputs/", "outputs/", "errors/"
DEFAULT_CHUNK = 1024


@dataclass(frozen=True)
class Manifest:
    model: str
    version: str
    sha256: str
    input: str
    output: str
    errors: str | None
    rows_in: int
    rows_out: int
    rows_failed: int
    duration_seconds: float


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
        except ModelNotFound:
            pass  # an ordinary folder, not an alias or version
    return model, None, "/".join(rest)


class BatchProcessor:
    def __init__(self, dataplane: DataPlane, s3: Any, *, chunk_size: int = DEFAULT_CHUNK) -> None:
        self.dataplane = dataplane
        self.s3 = s3
        self.chunk_size = chunk_size

    def model_version(self, key: str) -> str:
        """The version that would run `key` now (with a canary, one draw of its arms)."""
        model, selector, _ = split_key(key, self.dataplane)
        return self.dataplane.source.resolve(model, selector).version

    def process(
        self, bucket: str, key: str, version_id: str | None = None, *, model_version: str | None = None
    ) -> Manifest:
        """Predict every row of `s3://bucket/key` with `model_version` if given (else the version
        the path selects); raises MaasError when the file as a whole cannot be processed
        (unknown model, unreadable format). Row problems go to errors."""
        started = time.perf_counter()
        model, selector, relative = split_key(key, self.dataplane)
        suffix = format_of(key)
        ref = self.dataplane.source.resolve(model, model_version or selector)
        if ref.target != "lambda":
            raise InvalidInput(
                f"model '{model}' version {ref.version} targets {ref.target}; batch files for SageMaker "
                "endpoints are not supported yet, register a Lambda version to run this file"
            )
        runtime = self.dataplane.runtime(ref)
        prefix = f"{model}/{selector}/" if selector else f"{model}/"
        output_key = OUTPUTS + prefix + (relative[: -len(suffix)] + ".npz" if suffix == ".npy" else relative)
        errors_key = ERRORS + prefix + relative + ".errors.jsonl"
        with tempfile.TemporaryDirectory(prefix="maas-batch-") as scratch:
            source = Path(scratch) / f"input{suffix}"
            extra = {"VersionId": version_id} if version_id else None
            self.s3.download_file(bucket, key, str(source), ExtraArgs=extra)
            writer = OutputWriter(Path(scratch) / f"output{'.npz' if suffix == '.npy' else suffix}", suffix)
            errors_path = Path(scratch) / "errors.jsonl"
            counts = {"in": 0, "out": 0, "failed": 0}
            with errors_path.open("w") as errors:
                for chunk in _chunks(read_rows(source, suffix, runtime.signature), self.chunk_size):
                    counts["in"] += len(chunk)
                    for row, outputs, error in _predict(runtime, chunk):
                        if error is None:
                            writer.write(row.number, outputs)
                            counts["out"] += 1
                        else:
                            errors.write(json.dumps({"row": row.number, "error": error}) + "\n")
                            counts["failed"] += 1
            writer.close()
            self.s3.upload_file(str(writer.path), bucket, output_key)
            if counts["failed"]:
                self.s3.upload_file(str(errors_path), bucket, errors_key)
        manifest = Manifest(
            model=model,
            version=ref.version,
            sha256=ref.cache_key,
            input=key,
            output=output_key,
            errors=errors_key if counts["failed"] else None,
            rows_in=counts["in"],
            rows_out=counts["out"],
            rows_failed=counts["failed"],
            duration_seconds=round(time.perf_counter() - started, 3),
        )
        self.s3.put_object(
            Bucket=bucket,
            Key=output_key + ".manifest.json",
            Body=json.dumps(asdict(manifest), indent=2).encode(),
            ContentType="application/json",
        )
        logger.info(
            "batch %s: %d rows in, %d out, %d failed", key, counts["in"], counts["out"], counts["failed"]
        )
        return manifest


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _predict(runtime: Runtime, chunk: list[Row]) -> Iterator[tuple[Row, dict[str, np.ndarray], str | None]]:
    """Predictions for the readable rows in one call; if that call fails, row by row, so
    that one bad row fails alone."""
    good = [(row, row.arrays) for row in chunk if row.arrays is not None]
    results: dict[int, tuple[dict[str, np.ndarray], str | None]] = {}
    if good:
        try:
            names = list(good[0][1])
            outputs = runtime.predict(
                {name: np.stack([arrays[name] for _, arrays in good]) for name in names}
            )
            for index, (row, _) in enumerate(good):
                results[row.number] = ({name: value[index] for name, value in outputs.items()}, None)
        except (MaasError, ValueError):
            for row, arrays in good:
                results[row.number] = _predict_one(runtime, arrays)
    for row in chunk:
        if row.arrays is None:
            yield row, {}, row.error
        else:
            outputs, failure = results[row.number]
            yield row, outputs, failure


def _predict_one(runtime: Runtime, arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str | None]:
    try:
        single = runtime.predict({name: array[None, ...] for name, array in arrays.items()})
    except (MaasError, ValueError) as error:
        return {}, f"prediction failed: {getattr(error, 'message', error)}"
    return {name: value[0] for name, value in single.items()}, None
