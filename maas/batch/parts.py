"""Where a batch file too large for one invocation is cut into parts.

JSON Lines and CSV are cut at line ends into byte ranges; `.npy` into row ranges. Each part
knows the number of its first row in the file, so that its outputs and errors name rows as
an unsplit run would. The planner reads the object once, as a stream, counting line ends:

- JSON Lines: every `\\n` ends a line (JSON escapes newlines inside strings).
- CSV: a `\\n` ends a record only outside a quoted field, that is after an even number of
  `"` since the start of the file (RFC 4180 quoting: a quote inside a field is doubled). The
  first record is the header; every part is read with it in front.
- `.npy`: the header gives the rows and their size; no scan.

A plan never has more than MAX_PARTS parts: past that, parts grow.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

# numpy's .npy format helpers carry no annotations.
_npy_format: Any = np.lib.format

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

# Per-part results are kept in one DynamoDB item (400 KB) until the last part is done.
MAX_PARTS = 1000
NPY_HEADER_BYTES = 65_536  # read to find a .npy header; version 1 headers are at most 65,535 bytes


@dataclass(frozen=True)
class Part:
    """Part `index` of a file: bytes `start` to `end` (excluded) of the object, whose first row
    is row `first_row` of the file. A CSV part is read after bytes 0 to `header_end`."""

    index: int
    start: int
    end: int
    first_row: int


@dataclass(frozen=True)
class Layout:
    """What a part needs besides its range: the CSV header's end, or the .npy array's row layout."""

    header_end: int = 0
    npy_dtype: str | None = None
    npy_row_shape: tuple[int, ...] = ()


def part_count(size: int, part_bytes: int) -> int:
    """How many parts a file of `size` bytes is cut into (1: not cut)."""
    return min(MAX_PARTS, max(1, math.ceil(size / max(1, part_bytes))))


def line_parts(blocks: Iterable[bytes], size: int, parts: int, *, csv: bool) -> tuple[list[Part], Layout]:
    """The parts of a JSON Lines (or, with `csv`, CSV) object of `size` bytes read as `blocks`,
    each cut just past the first line end at or after `k * size / parts`; fewer parts where a
    range holds no line end (one long line, or for CSV a long quoted field)."""
    targets = [round(size * k / parts) for k in range(1, parts)]
    if csv:
        targets.insert(0, 0)  # the first record end closes the header
    cuts: list[tuple[int, int]] = []  # (offset just past a record end, record ends before it)
    records = 0
    for at, segment in _unquoted_segments(blocks, csv=csv):
        while targets and targets[0] < at + len(segment):
            found = segment.find(b"\n", max(0, targets[0] - at))
            if found < 0:
                break
            cut = at + found + 1
            cuts.append((cut, records + segment.count(b"\n", 0, found + 1)))
            while targets and targets[0] < cut:
                targets.pop(0)
        records += segment.count(b"\n")
    header_end = 0
    if csv:
        if not cuts:
            return [Part(0, size, size, 0)], Layout(header_end=size)  # a header and no rows
        header_end = cuts.pop(0)[0]
        cuts = [(cut, before - 1) for cut, before in cuts]  # rows are counted after the header
    result: list[Part] = []
    start, first_row = header_end, 0
    for cut, before in cuts:
        if cut >= size:
            break
        result.append(Part(len(result), start, cut, first_row))
        start, first_row = cut, before
    result.append(Part(len(result), start, size, first_row))
    return result, Layout(header_end=header_end)


def _unquoted_segments(blocks: Iterable[bytes], *, csv: bool) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of every stretch of the stream outside quoted CSV fields (for JSON Lines,
    each block whole). Between quotes, stretches alternate outside and inside a field."""
    position, quoted = 0, False
    for block in blocks:
        if not csv:
            yield position, block
            position += len(block)
            continue
        for number, segment in enumerate(block.split(b'"')):
            if number:
                quoted = not quoted
                position += 1  # the quote
            if not quoted:
                yield position, segment
            position += len(segment)


def npy_layout(head: bytes) -> tuple[int, int, Layout] | None:
    """(offset of the data, rows, layout) from the first bytes of a .npy file, or None when it
    cannot be cut by rows (not a .npy, Fortran order, objects, a single value): such a file
    runs whole, and its reading says what is wrong."""
    stream = io.BytesIO(head)
    try:
        version = _npy_format.read_magic(stream)
        reader = _npy_format.read_array_header_1_0 if version == (1, 0) else _npy_format.read_array_header_2_0
        shape, fortran_order, dtype = reader(stream)
    except (ValueError, OSError, EOFError, SyntaxError):
        return None
    if fortran_order or dtype.hasobject or dtype.names is not None or len(shape) == 0:
        return None
    row_shape = tuple(int(dim) for dim in shape[1:])
    if dtype.itemsize * math.prod(row_shape) == 0:
        return None
    return stream.tell(), int(shape[0]), Layout(npy_dtype=dtype.str, npy_row_shape=row_shape)


def npy_parts(data_offset: int, rows: int, layout: Layout, part_bytes: int) -> list[Part]:
    """The parts of a .npy file: whole rows, `part_bytes` or fewer each (at least one row)."""
    row_bytes = np.dtype(layout.npy_dtype).itemsize * math.prod(layout.npy_row_shape)
    parts = part_count(rows * row_bytes, part_bytes)
    per_part = max(1, math.ceil(rows / parts))
    return [
        Part(
            index,
            data_offset + first * row_bytes,
            data_offset + min(rows, first + per_part) * row_bytes,
            first,
        )
        for index, first in enumerate(range(0, rows, per_part))
    ]


def npy_header(rows: int, layout: Layout) -> bytes:
    """The .npy header of `rows` rows laid out as `layout`: what a part writes before its bytes."""
    stream = io.BytesIO()
    header: dict[str, Any] = {
        "descr": _npy_format.dtype_to_descr(np.dtype(layout.npy_dtype)),
        "fortran_order": False,
        "shape": (rows, *layout.npy_row_shape),
    }
    _npy_format.write_array_header_2_0(stream, header)
    return stream.getvalue()
