"""Rows checked a chunk at a time give what checking them one by one gives: the same rows
predicted, the same arrays, and the same rows failed with the same reasons, whatever the mix
of good and bad rows; and outputs written a chunk at a time are, byte for byte, what writing
each row with json.dumps gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maas.batch.chunks import read_chunks
from maas.batch.formats import read_rows
from maas.batch.writers import OutputWriter
from maas.protocol.datatypes import Datatype
from maas.runtimes import Signature, TensorSpec

row_values = st.one_of(
    st.lists(st.integers(-200, 200), min_size=3, max_size=3),  # INT8 out of range sometimes
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=3, max_size=3),
    st.lists(st.integers(0, 3), min_size=2, max_size=4),  # the wrong width
    st.lists(st.booleans(), min_size=3, max_size=3),
    st.just(["a", "b", "c"]),
    st.just([[1, 2, 3]]),  # nested: three values all the same
    st.just(7),
    st.lists(st.integers(-(2**65), 2**65), min_size=3, max_size=3),  # past int64 and uint64
    st.lists(st.one_of(st.booleans(), st.integers(0, 1)), min_size=3, max_size=3),
)


@settings(max_examples=400, deadline=None)
@given(
    rows=st.lists(st.one_of(row_values, st.just("not json")), min_size=1, max_size=25),
    datatype=st.sampled_from(
        [Datatype.FP32, Datatype.INT8, Datatype.BOOL, Datatype.FP16, Datatype.UINT64, Datatype.INT64]
    ),
    size=st.integers(1, 30),
)
def test_a_chunk_checked_at_once_equals_its_rows_checked_one_by_one(
    tmp_path_factory: pytest.TempPathFactory, rows: list[Any], datatype: Datatype, size: int
) -> None:
    signature = Signature(inputs=(TensorSpec("x", datatype, (-1, 3)),), outputs=())
    path = tmp_path_factory.mktemp("chunks") / "rows.jsonl"
    path.write_text("\n".join(row if row == "not json" else json.dumps(row) for row in rows) + "\n")
    one_by_one = list(read_rows(path, ".jsonl", signature))
    by_chunk: list[tuple[int, Any, str | None]] = []
    for chunk in read_chunks(path, ".jsonl", signature, size):
        assert chunk.size == len(chunk.numbers) + len(chunk.failed)
        by_chunk += [(number, chunk.row(index)["x"], None) for index, number in enumerate(chunk.numbers)]
        by_chunk += [(number, None, reason) for number, reason in chunk.failed]
    by_chunk.sort(key=lambda row: row[0])
    assert [(row, error) for row, _, error in by_chunk] == [(row.number, row.error) for row in one_by_one]
    for (_, array, _), row in zip(by_chunk, one_by_one, strict=True):
        if row.arrays is not None:
            assert array.dtype == row.arrays["x"].dtype
            assert np.array_equal(array, row.arrays["x"])


@pytest.mark.parametrize(
    "outputs",
    [
        {
            "label": np.array([3, 1, 4]),
            "probabilities": np.random.default_rng(0).random((3, 10), dtype=np.float32),
        },
        {"deep": np.random.default_rng(1).random((3, 2, 2, 2))},
        {"empty": np.zeros((3, 0)), "nested_empty": np.zeros((3, 2, 0))},
        {"flags": np.array([True, False, True]), "ints": np.array([-(2**62), 0, 2**62])},
        {"odd": np.array([np.nan, np.inf, -np.inf]), 'name ", : [x]': np.array([1e-7, 1e16, 0.1])},
        {"text": np.array(["a", "b\n", '"c"'], dtype=object)},
    ],
    ids=["classifier", "3-d", "empty", "bool-int", "nan-and-odd-name", "strings"],
)
def test_outputs_written_per_chunk_are_what_json_dumps_writes_per_row(
    tmp_path: Path, outputs: dict[str, np.ndarray]
) -> None:
    writer = OutputWriter(tmp_path / "out.jsonl", ".jsonl")
    writer.write_chunk([0, 5, 9], outputs)
    writer.close()
    expected = "".join(
        json.dumps(
            {
                "row": number,
                "outputs": {name: np.asarray(value[index]).tolist() for name, value in outputs.items()},
            }
        )
        + "\n"
        for index, number in enumerate([0, 5, 9])
    )
    assert (tmp_path / "out.jsonl").read_text() == expected
