"""Cutting a batch file into parts, checked against the readers that run the parts: whatever
the file (blank lines, CRLF, quoted CSV fields with line ends inside, no final line end) and
however it arrives (blocks of any size), the parts cover every byte once, and reading each
part from its first row number gives exactly the rows, numbers and reasons of the whole file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maas.batch.formats import read_rows
from maas.batch.parts import MAX_PARTS, Layout, line_parts, npy_header, npy_layout, npy_parts, part_count
from maas.protocol.datatypes import Datatype
from maas.runtimes import Signature, TensorSpec

SIGNATURE = Signature(inputs=(TensorSpec("x", Datatype.FP32, (-1, 2)),), outputs=())


def blocks(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)] or [b""]


def rows_of(path: Path, suffix: str, first_row: int = 0) -> list[tuple[int, list[float] | None, str | None]]:
    return [
        (row.number, None if row.arrays is None else row.arrays["x"].tolist(), row.error)
        for row in read_rows(path, suffix, SIGNATURE, first_row=first_row)
    ]


jsonl_line = st.one_of(
    st.just(""),
    st.just("   "),
    st.just("not json"),
    st.lists(st.integers(-5, 5), min_size=1, max_size=3).map(json.dumps),
    st.just('{"inputs": [{"name": "x", "data": [1, 2]}]}'),
)


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(jsonl_line, max_size=40),
    ending=st.sampled_from(["", "\n", "\r\n"]),
    crlf=st.booleans(),
    parts=st.integers(1, 12),
    block=st.integers(1, 64),
)
def test_json_lines_parts_read_as_the_whole_file_does(
    tmp_path_factory: pytest.TempPathFactory,
    *,
    lines: list[str],
    ending: str,
    crlf: bool,
    parts: int,
    block: int,
) -> None:
    data = (("\r\n" if crlf else "\n").join(lines) + ending).encode()
    if not data:
        return
    planned, _ = line_parts(blocks(data, block), len(data), parts, csv=False)
    assert b"".join(data[part.start : part.end] for part in planned) == data
    assert [part.index for part in planned] == list(range(len(planned)))
    directory = tmp_path_factory.mktemp("jsonl")
    whole = directory / "whole.jsonl"
    whole.write_bytes(data)
    joined = []
    for part in planned:
        piece = directory / f"{part.index}.jsonl"
        piece.write_bytes(data[part.start : part.end])
        joined += rows_of(piece, ".jsonl", part.first_row)
    assert joined == rows_of(whole, ".jsonl")


csv_field = st.one_of(
    st.integers(-9, 9).map(str),
    st.just(""),
    st.just("x,y"),
    st.just('say "hi"'),
    st.just("two\nlines"),
    st.just("cr\r\nlf"),
    st.just("1.5"),
)


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(st.lists(csv_field, min_size=2, max_size=2), max_size=30),
    terminator=st.sampled_from(["\n", "\r\n"]),
    final=st.booleans(),
    parts=st.integers(1, 10),
    block=st.integers(1, 48),
)
def test_csv_parts_cut_only_between_records_and_read_as_the_whole_file_does(
    tmp_path_factory: pytest.TempPathFactory,
    *,
    records: list[list[str]],
    terminator: str,
    final: bool,
    parts: int,
    block: int,
) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=terminator).writerows([["x_0", "x_1"], *records])
    text = buffer.getvalue() if final else buffer.getvalue()[: -len(terminator)]
    data = text.encode()
    planned, layout = line_parts(blocks(data, block), len(data), parts, csv=True)
    if records or final:  # the header ends with its line end
        assert data[layout.header_end - len(terminator) : layout.header_end] == terminator.encode()
    assert planned[0].start == layout.header_end and planned[-1].end == len(data)
    directory = tmp_path_factory.mktemp("csv")
    whole = directory / "whole.csv"
    whole.write_bytes(data)
    joined = []
    for part in planned:
        piece = directory / f"{part.index}.csv"
        piece.write_bytes(data[: layout.header_end] + data[part.start : part.end])
        joined += rows_of(piece, ".csv", part.first_row)
    assert joined == rows_of(whole, ".csv")


def test_a_file_is_never_cut_into_more_than_max_parts() -> None:
    assert part_count(10**12, 1) == MAX_PARTS
    assert part_count(0, 100) == part_count(100, 100) == 1
    assert part_count(101, 100) == 2


def test_npy_parts_are_whole_row_ranges_and_each_reads_back_as_its_rows(tmp_path: Path) -> None:
    rows = np.arange(37 * 2, dtype=np.float32).reshape(37, 2)
    buffer = io.BytesIO()
    np.save(buffer, rows)
    data = buffer.getvalue()
    found = npy_layout(data[:1024])
    assert found is not None
    offset, count, layout = found
    assert (count, layout.npy_row_shape) == (37, (2,))
    planned = npy_parts(offset, count, layout, part_bytes=8 * 5)  # 5 rows of 2 float32 each
    assert len(planned) == 8 and planned[-1].end == len(data)
    joined = []
    for part in planned:
        piece = tmp_path / f"{part.index}.npy"
        rows_in_part = (part.end - part.start) // 8
        piece.write_bytes(npy_header(rows_in_part, layout) + data[part.start : part.end])
        joined += rows_of(piece, ".npy", part.first_row)
    whole = tmp_path / "whole.npy"
    whole.write_bytes(data)
    assert joined == rows_of(whole, ".npy")


def test_npy_files_that_cannot_be_cut_by_rows_run_whole() -> None:
    def head(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()[:1024]

    assert npy_layout(b"not an array") is None
    assert npy_layout(head(np.float32(1.0))) is None  # a single value
    assert npy_layout(head(np.asfortranarray(np.ones((4, 3))))) is None
    assert npy_layout(head(np.zeros((4, 0)))) is None  # rows of no bytes
    assert npy_layout(head(np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]))) is None
    assert npy_layout(head(np.zeros((4, 3)))) is not None
    assert Layout().header_end == 0


def test_a_quote_inside_an_unquoted_csv_field_moves_cuts_but_reads_every_record_once(tmp_path: Path) -> None:
    lines = ["x_0,x_1"] + [f"{n},{n}" for n in range(40)]
    lines[5], lines[15] = '4,5"x', '14,y"z'  # two lone quotes: the csv module reads them as text
    data = ("\n".join(lines) + "\n").encode()
    planned, layout = line_parts(blocks(data, 16), len(data), 8, csv=True)
    assert not any(data.index(b'5"x') < part.start <= data.index(b'y"z') for part in planned)
    whole = tmp_path / "whole.csv"
    whole.write_bytes(data)
    joined = []
    for part in planned:
        piece = tmp_path / f"{part.index}.csv"
        piece.write_bytes(data[: layout.header_end] + data[part.start : part.end])
        joined += rows_of(piece, ".csv", part.first_row)
    expected = rows_of(whole, ".csv")
    # Every record once, read as the whole file reads it; only the numbers after the stretch differ.
    assert [(values, error) for _, values, error in joined] == [
        (values, error) for _, values, error in expected
    ]
