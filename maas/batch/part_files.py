"""The S3 side of a file run as parts: where each part's outputs, errors and the plan go, a
part's range downloaded and predicted, and the file's manifest listing every part.

    outputs/<model>/[<alias>/]<file>.parts/<job>/plan.json            the parts and their messages
    outputs/<model>/[<alias>/]<file>.parts/<job>/00003.jsonl           part 3's predictions
    errors/<model>/[<alias>/]<file>.parts/<job>/00003.errors.jsonl     part 3's failed rows, if any
    outputs/<model>/[<alias>/]<file>.manifest.json                      the file's, once every part is done

`<job>` names one run of one upload, so that a re-upload while parts still run never mixes
its parts with the earlier upload's.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.batch.formats import format_of
from maas.batch.parts import npy_header
from maas.batch.processor import ERRORS, OUTPUTS, Manifest, output_key, split_key

if TYPE_CHECKING:
    from maas.batch.processor import BatchProcessor
    from maas.batch.split import PartJob
    from maas.names import ModelRef

BLOCK = 8 * 1024 * 1024


class PartReplaced(Exception):
    """The object a part reads was replaced by a newer upload (an unversioned bucket)."""


def parts_folder(model: str, selector: str | None, relative: str, job_id: str, root: str = OUTPUTS) -> str:
    """The folder holding the parts' files of one run of `inputs/<model>/[<selector>/]<relative>`."""
    prefix = f"{model}/{selector}/" if selector else f"{model}/"
    return f"{root}{prefix}{relative}.parts/{job_id}/"


def write_plan(processor: BatchProcessor, parts: list[PartJob]) -> str:
    """Writes the plan of a split file (every part and its message) next to its outputs; its key."""
    first = parts[0]
    model, selector, relative = split_key(first.key, processor.dataplane)
    key = parts_folder(model, selector, relative, first.job_id) + "plan.json"
    plan = {
        "input": first.key,
        "input_version": first.version_id,
        "model_version": first.model_version,
        "parts": len(parts),
        "planned_at": first.planned_at,
        "messages": [part.body() for part in parts],
    }
    processor.s3.put_object(
        Bucket=first.bucket, Key=key, Body=json.dumps(plan, indent=2).encode(), ContentType="application/json"
    )
    return key


def process_part(processor: BatchProcessor, part: PartJob) -> tuple[dict[str, Any], ModelRef]:
    """Predicts the rows of `part` and uploads its outputs and errors; (its result, the version
    that ran it). Raises PartReplaced if the object changed under it, MaasError as a file would."""
    started, started_at = time.perf_counter(), time.time()
    model, selector, relative = split_key(part.key, processor.dataplane)
    suffix = format_of(part.key)
    ref = processor.lambda_version(model, part.model_version)
    name = f"{part.index:05d}"
    outputs_at = parts_folder(model, selector, relative, part.job_id) + name + _output_suffix(suffix)
    errors_key = parts_folder(model, selector, relative, part.job_id, ERRORS) + name + ".errors.jsonl"
    with (
        processor.dataplane.serving(ref) as runtime,
        tempfile.TemporaryDirectory(prefix="maas-part-") as scratch,
    ):
        source = Path(scratch) / f"input{suffix}"
        _download(processor.s3, part, suffix, source)
        counts = processor.predict_local(
            runtime,
            model,
            source,
            suffix,
            bucket=part.bucket,
            outputs_at=outputs_at,
            errors_key=errors_key,
            first_row=part.first_row,
        )
    result = {
        "part": part.index,
        "first_row": part.first_row,
        "rows_in": counts["in"],
        "rows_out": counts["out"],
        "rows_failed": counts["failed"],
        "output": outputs_at,
        "errors": errors_key if counts["failed"] else None,
        "started_at": round(started_at, 3),
        "duration_seconds": round(time.perf_counter() - started, 3),
    }
    return result, ref


def _download(s3: Any, part: PartJob, suffix: str, path: Path) -> None:
    """The part's bytes as a file its format's reader takes: a CSV part after the file's header,
    a .npy part after a header of its own rows."""
    from botocore.exceptions import ClientError

    # The upload the part was planned on, whatever was uploaded since.
    pinned = (
        {"VersionId": part.version_id} if part.version_id else {"IfMatch": part.etag} if part.etag else {}
    )
    try:
        with path.open("wb") as stream:
            if suffix == ".csv":
                stream.write(_read(s3, part, 0, part.header_end, pinned))
            elif suffix == ".npy":
                stream.write(npy_header(part.rows, part.layout))
            body = s3.get_object(
                Bucket=part.bucket, Key=part.key, Range=f"bytes={part.start}-{part.end - 1}", **pinned
            )["Body"]
            for block in body.iter_chunks(BLOCK):
                stream.write(block)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("PreconditionFailed", "412"):
            raise PartReplaced(part.key) from None
        raise


def _read(s3: Any, part: PartJob, start: int, end: int, pinned: dict[str, str]) -> bytes:
    if end <= start:
        return b""
    answer = s3.get_object(Bucket=part.bucket, Key=part.key, Range=f"bytes={start}-{end - 1}", **pinned)
    return bytes(answer["Body"].read())


def _output_suffix(suffix: str) -> str:
    return ".npz" if suffix == ".npy" else suffix


def write_split_manifest(
    processor: BatchProcessor, part: PartJob, results: list[dict[str, Any]], ref: ModelRef
) -> Manifest:
    """The manifest of a file whose every part is done, written where an unsplit file's goes:
    the counts summed, `output` and `errors` the folders of the parts' files, `parts` each part's."""
    model, selector, relative = split_key(part.key, processor.dataplane)
    failed = sum(result["rows_failed"] for result in results)
    manifest = Manifest(
        model=model,
        version=ref.version,
        sha256=ref.cache_key,
        input=part.key,
        output=parts_folder(model, selector, relative, part.job_id),
        errors=parts_folder(model, selector, relative, part.job_id, ERRORS) if failed else None,
        rows_in=sum(result["rows_in"] for result in results),
        rows_out=sum(result["rows_out"] for result in results),
        rows_failed=failed,
        duration_seconds=round(time.time() - part.planned_at, 3),
        input_version=part.version_id,
        alias=selector,
        parts=results,
    )
    processor.write_manifest(part.bucket, output_key(model, selector, relative), manifest)
    return manifest
