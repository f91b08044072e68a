"""A split file's results as one file per format, and how far a split file has got, for the
CLI (`maas batch get` and `status`), from what the parts leave in S3 (maas.batch.part_files).

Outputs of parts join in part order: JSON Lines and errors files end to end, CSV with the
first part's header once, `.npz` array by array. Row numbers are the file's already.
"""

from __future__ import annotations

import json
import re
import shutil
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.batch.processor import ERRORS, INPUTS, OUTPUTS

if TYPE_CHECKING:
    from pathlib import Path

_PART_FILE = re.compile(r"/\d{5}\.(jsonl|csv|npz)$")


def joined_keys(manifest: dict[str, Any]) -> tuple[str, str]:
    """Where an unsplit run of the manifest's input would have put its outputs and errors: the
    names `maas batch get` writes a split file's joined results under."""
    relative = manifest["input"][len(INPUTS) :]
    output = OUTPUTS + (relative[: -len(".npy")] + ".npz" if relative.endswith(".npy") else relative)
    return output, ERRORS + relative + ".errors.jsonl"


def join_outputs(parts: list[Path], target: Path) -> None:
    """The parts' output files (in part order) as one file at `target`, in the format its name says."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".npz":
        _join_npz(parts, target)
        return
    with target.open("wb") as joined:
        header_written = False
        for path in parts:
            with path.open("rb") as part:
                if target.suffix == ".csv":
                    # Each part's CSV starts with the same header (output names, no line ends).
                    header = part.readline()
                    if not header:
                        continue  # a part none of whose rows were predicted wrote nothing
                    if not header_written:
                        joined.write(header)
                        header_written = True
                shutil.copyfileobj(part, joined)


def join_errors(parts: list[Path], target: Path) -> None:
    """The parts' errors files, end to end (their rows are the file's row numbers)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as joined:
        for path in parts:
            with path.open("rb") as part:
                shutil.copyfileobj(part, joined)


def _join_npz(parts: list[Path], target: Path) -> None:
    arrays: dict[str, list[np.ndarray]] = {}
    for path in parts:
        with np.load(path, allow_pickle=False) as part:
            for name in part.files:
                arrays.setdefault(name, []).append(part[name])
    with target.open("wb") as stream:
        np.savez(stream, **{name: np.concatenate(values) for name, values in arrays.items()})


def split_progress(
    s3: Any, bucket: str, manifest_key: str, input_version: str | None
) -> dict[str, int] | None:
    """{"parts", "parts_done"} of the run of a split file under way for the upload
    `input_version` (the latest plan, on an unversioned bucket), or None if none was planned."""
    folder = manifest_key[: -len(".manifest.json")] + ".parts/"
    listed = [
        item
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder)
        for item in page.get("Contents", [])
    ]
    plans = sorted(
        (item for item in listed if item["Key"].endswith("/plan.json")), key=lambda i: i["LastModified"]
    )
    for item in reversed(plans):
        plan = json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        if input_version and plan.get("input_version") and plan["input_version"] != input_version:
            continue
        run = item["Key"][: -len("plan.json")]
        done = sum(1 for other in listed if other["Key"].startswith(run) and _PART_FILE.search(other["Key"]))
        return {"parts": int(plan["parts"]), "parts_done": done}
    return None
