"""Rows read and checked a chunk at a time: one conversion and one set of checks (kind, range,
finiteness, shape) per input for the whole chunk, and row by row only when the chunk fails
them, so that a bad row still fails alone with the reason the OIP API would give."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.batch.formats import RawRow, check_row, open_npy, read_raw_rows
from maas.errors import InvalidInput
from maas.protocol.codec import decode_values

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from maas.runtimes import Signature, TensorSpec


@dataclass
class Chunk:
    """Rows read together: the readable ones (`numbers`) as one array per input when they stack
    (`arrays`), else one dict per row (`rows`); and the unreadable ones with their reasons."""

    size: int
    numbers: list[int] = field(default_factory=list)
    arrays: dict[str, np.ndarray] | None = None
    rows: list[dict[str, np.ndarray]] | None = None
    failed: list[tuple[int, str]] = field(default_factory=list)

    def row(self, index: int) -> dict[str, np.ndarray]:
        """The arrays of the `index`-th readable row."""
        if self.rows is not None:
            return self.rows[index]
        assert self.arrays is not None
        return {name: array[index] for name, array in self.arrays.items()}


def read_chunks(
    path: Path, suffix: str, signature: Signature, size: int, *, first_row: int = 0
) -> Iterator[Chunk]:
    """The rows of the file at `path` in chunks of `size`, each checked as a whole."""
    if suffix == ".npy":
        # Slices of the memory map: a chunk is converted in one call, never row by row.
        array = open_npy(path, signature)
        name = signature.inputs[0].name
        for start in range(0, len(array), size):
            block = array[start : start + size]
            numbers = list(range(first_row + start, first_row + start + len(block)))
            yield _checked(numbers, {name: block}, signature) or _row_by_row(
                [RawRow(number, values={name: row}) for number, row in zip(numbers, block, strict=True)],
                signature,
            )
        return
    batch: list[RawRow] = []
    for raw in read_raw_rows(path, suffix, signature, first_row=first_row):
        batch.append(raw)
        if len(batch) == size:
            yield chunk_of(batch, signature)
            batch = []
    if batch:
        yield chunk_of(batch, signature)


def chunk_of(raws: list[RawRow], signature: Signature) -> Chunk:
    """`raws` checked at once, or row by row if the whole fails."""
    readable = [raw for raw in raws if raw.values is not None]
    unreadable = [(raw.number, raw.error or "cannot read row") for raw in raws if raw.values is None]
    values = {spec.name: [raw.values[spec.name] for raw in readable] for spec in signature.inputs}  # type: ignore[index]
    chunk = _checked([raw.number for raw in readable], values, signature) if readable else None
    if chunk is None:
        chunk = _row_by_row(readable, signature)
    chunk.size = len(raws)
    chunk.failed = sorted(chunk.failed + unreadable)
    return chunk


def _checked(numbers: list[int], values: dict[str, Any], signature: Signature) -> Chunk | None:
    """The chunk if every row passes the checks as one tensor per input, else None."""
    try:
        arrays = {spec.name: _chunk_array(spec, values[spec.name], len(numbers)) for spec in signature.inputs}
    except (InvalidInput, ValueError, TypeError):
        return None
    return Chunk(size=len(numbers), numbers=numbers, arrays=arrays)


def _chunk_array(spec: TensorSpec, values: Any, count: int) -> np.ndarray:
    """The `count` rows of input `spec` as one array; ValueError unless each row alone would
    pass `row_array` and they stack (same shape)."""
    array = decode_values(spec.name, values, spec.datatype)
    if array.ndim == 0 or array.shape[0] != count:
        raise ValueError("the rows do not stack")
    row_shape = tuple(spec.shape[1:])
    if any(dim < 0 for dim in row_shape):
        return array
    if array.size != count * math.prod(row_shape):
        raise ValueError("a row has the wrong number of values")
    return array.reshape((count, *row_shape))


def _row_by_row(readable: list[RawRow], signature: Signature) -> Chunk:
    chunk = Chunk(size=len(readable), rows=[])
    assert chunk.rows is not None
    for raw in readable:
        row = check_row(raw, signature)
        if row.arrays is None:
            chunk.failed.append((row.number, row.error or "cannot read row"))
        else:
            chunk.numbers.append(row.number)
            chunk.rows.append(row.arrays)
    try:
        # Rows that stack are still predicted in one call; rows of different shapes
        # (dynamic dimensions) are predicted one by one.
        if chunk.rows:
            chunk.arrays = {name: np.stack([row[name] for row in chunk.rows]) for name in chunk.rows[0]}
            chunk.rows = None
    except ValueError:
        pass
    return chunk
