"""Rows read and checked a chunk at a time: one conversion and one set of checks (kind, range,
finiteness, shape) per input for the whole chunk, and row by row only when the chunk fails
them, so that a bad row still fails alone with the reason the OIP API would give."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from maas.batch.formats import RawRow, check_row, jsonl_row, open_npy, read_raw_rows
from maas.errors import InvalidInput
from maas.protocol.codec import decode_values
from maas.protocol.datatypes import Datatype

_decode_json = msgspec.json.Decoder().decode

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
    """The rows of the file at `path` in chunks of `size`, each checked as a whole; rows are
    numbered from `first_row` (a part of a split file starts where the part before it ended)."""
    if suffix == ".npy":
        yield from _npy_chunks(path, signature, size, first_row)
    elif suffix == ".jsonl":
        yield from _jsonl_chunks(path, signature, size, first_row)
    else:
        pending = _Pending(signature)
        for raw in read_raw_rows(path, suffix, signature, first_row=first_row):
            pending.add(raw)
            if pending.size == size:
                yield pending.chunk()
        if pending.size:
            yield pending.chunk()


class _Pending:
    """The rows of the next chunk, as read: values per input, and the unreadable rows."""

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self.names = [spec.name for spec in signature.inputs]
        self._reset()

    def _reset(self) -> None:
        self.size = 0
        self.numbers: list[int] = []
        self.values: dict[str, list[Any]] = {name: [] for name in self.names}
        self.unreadable: list[tuple[int, str]] = []
        # numpy turns true/false mixed with numbers into numbers, where a row of booleans alone
        # is refused by a numeric input: such a chunk is checked row by row.
        self.maybe_booleans = False

    def add(self, raw: RawRow) -> None:
        self.size += 1
        if raw.values is None:
            self.unreadable.append((raw.number, raw.error or "cannot read row"))
            return
        self.numbers.append(raw.number)
        for name in self.names:
            self.values[name].append(raw.values[name])

    def chunk(self) -> Chunk:
        """The rows so far, checked at once or, if that fails, row by row; then a fresh chunk."""
        chunk = None
        if self.numbers and not (self.maybe_booleans and _numeric_inputs(self.signature)):
            chunk = _checked(self.numbers, self.values, self.signature)
        if chunk is None:
            raws = [
                RawRow(number, values={name: self.values[name][index] for name in self.names})
                for index, number in enumerate(self.numbers)
            ]
            chunk = _row_by_row(raws, self.signature)
        chunk.size = self.size
        chunk.failed = sorted(chunk.failed + self.unreadable)
        self._reset()
        return chunk


def _jsonl_chunks(path: Path, signature: Signature, size: int, first_row: int) -> Iterator[Chunk]:
    # For a single-input model fed bare arrays (the common case), no object per row: a line
    # msgspec reads as an array is a row; anything else goes through the full reading of a line.
    single = signature.inputs[0].name if len(signature.inputs) == 1 else None
    pending = _Pending(signature)
    with path.open("r", encoding="utf-8", errors="replace", newline="") as stream:
        for number, line in enumerate(stream, start=first_row):
            if "true" in line or "false" in line:
                pending.maybe_booleans = True
            document = None
            if single is not None:
                with contextlib.suppress(msgspec.DecodeError, RecursionError):
                    document = _decode_json(line)
            if type(document) is list:
                pending.numbers.append(number)
                pending.values[single].append(document)  # type: ignore[index]
                pending.size += 1
            else:
                raw = jsonl_row(number, line, signature)
                if raw is None:
                    continue  # a blank line
                pending.add(raw)
            if pending.size == size:
                yield pending.chunk()
    if pending.size:
        yield pending.chunk()


def _numeric_inputs(signature: Signature) -> bool:
    return any(spec.datatype not in (Datatype.BOOL, Datatype.BYTES) for spec in signature.inputs)


def _npy_chunks(path: Path, signature: Signature, size: int, first_row: int) -> Iterator[Chunk]:
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
