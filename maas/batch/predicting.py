"""Predicting a chunk of rows: in one call when the model's first dimension is dynamic, falling
back to one call per row when that fails so that one bad row fails alone; in groups of exactly
`group` rows when it is fixed (`[8, 4]`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from maas.errors import MaasError

if TYPE_CHECKING:
    from maas.batch.chunks import Chunk
    from maas.runtimes import Runtime

# Rows predicted together: their numbers and one array per output whose first dimension follows them.
Segment = tuple[list[int], dict[str, np.ndarray]]


def predict_chunk(
    runtime: Runtime, chunk: Chunk, group: int | None
) -> tuple[list[Segment], list[tuple[int, str]]]:
    """The predictions of the readable rows of `chunk` as segments in row order, and every row
    that failed (unreadable, or its prediction failed) with the reason, in row order."""
    failed = list(chunk.failed)
    if not chunk.numbers:
        return [], failed
    if group is not None:
        done = []
        for start in range(0, len(chunk.numbers), group):
            segment, failure = _predict_group(runtime, chunk, start, group)
            if failure is None:
                done.append(segment)
            else:
                failed.extend((number, failure) for number in segment[0])
        return done, sorted(failed)
    if chunk.arrays is not None:
        try:
            return [(chunk.numbers, runtime.predict(chunk.arrays))], failed
        except (MaasError, ValueError):
            pass  # one row may be the cause: each row alone below
    done = []
    for index, number in enumerate(chunk.numbers):
        try:
            single = runtime.predict({name: array[None, ...] for name, array in chunk.row(index).items()})
        except (MaasError, ValueError) as error:
            failed.append((number, f"prediction failed: {getattr(error, 'message', error)}"))
            continue
        done.append(([number], single))
    return done, sorted(failed)


def _predict_group(runtime: Runtime, chunk: Chunk, start: int, group: int) -> tuple[Segment, str | None]:
    # A short group (the file's last rows, or a chunk with unreadable rows) is filled with
    # copies of its last row, whose predictions are dropped: the model takes exactly `group`.
    numbers = chunk.numbers[start : start + group]
    try:
        if chunk.arrays is not None:
            members = {name: array[start : start + group] for name, array in chunk.arrays.items()}
        else:
            rows = [chunk.row(index) for index in range(start, start + len(numbers))]
            members = {name: np.stack([row[name] for row in rows]) for name in rows[0]}
        filled = {
            name: np.concatenate([array, np.repeat(array[-1:], group - len(numbers), axis=0)])
            for name, array in members.items()
        }
        outputs = runtime.predict(filled)
    except (MaasError, ValueError) as error:
        failure = (
            f"prediction failed for rows {numbers[0]}-{numbers[-1]} (the model takes {group} rows per call): "
            f"{getattr(error, 'message', error)}"
        )
        return (numbers, {}), failure
    return (numbers, {name: value[: len(numbers)] for name, value in outputs.items()}), None
