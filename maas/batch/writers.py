"""Batch outputs: predictions written chunk by chunk, in row order, in the input's format.

- JSON Lines in, JSON Lines out: `{"row": n, "outputs": {name: value}}` per row.
- CSV in, CSV out: `row`, then one column per output value (`<output>_<i>` for a vector).
- `.npy` in, `.npz` out: one array per output, and `row`, the input row of each prediction.
"""

from __future__ import annotations

import csv
import json
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path


class OutputWriter:
    """Writes predictions, in row order, to a local file in the input's format."""

    def __init__(self, path: Path, suffix: str) -> None:
        self.path = path
        self.suffix = suffix
        self._npz: dict[str, list[np.ndarray]] = {}
        self._npz_rows: list[np.ndarray] = []
        self._stream = None if suffix == ".npy" else path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._stream) if suffix == ".csv" and self._stream else None
        self._header_written = False

    def write_chunk(self, numbers: list[int], outputs: dict[str, np.ndarray]) -> None:
        """The predictions of rows `numbers`: `outputs` holds one array per output whose first
        dimension follows `numbers`. Each array is converted once for the whole chunk."""
        if not numbers:
            return
        if self.suffix == ".npy":
            # Kept as arrays until close: a row's outputs are small, and .npz is written whole.
            for name, value in outputs.items():
                self._npz.setdefault(name, []).append(np.asarray(value))
            self._npz_rows.append(np.asarray(numbers, dtype=np.int64))
            return
        assert self._stream is not None
        if self._csv is not None:
            self._write_csv(numbers, outputs)
            return
        texts = [_row_texts(name, np.asarray(value), len(numbers)) for name, value in outputs.items()]
        exact = [text for text in texts if text is not None]
        if exact and len(exact) == len(texts):
            self._stream.writelines(
                f'{{"row": {number}, "outputs": {{{", ".join(row)}}}}}\n'
                for number, row in zip(numbers, zip(*exact, strict=True), strict=True)
            )
            return
        values = {name: np.asarray(value).tolist() for name, value in outputs.items()}
        dumps, write = json.dumps, self._stream.write
        for index, number in enumerate(numbers):
            write(dumps({"row": number, "outputs": {name: v[index] for name, v in values.items()}}) + "\n")

    def _write_csv(self, numbers: list[int], outputs: dict[str, np.ndarray]) -> None:
        assert self._csv is not None
        flat = {name: np.asarray(value).reshape(len(numbers), -1).tolist() for name, value in outputs.items()}
        if not self._header_written:
            widths = {name: len(rows[0]) for name, rows in flat.items()}
            names = ["row"] + [
                f"{name}_{i}" if width > 1 else name for name, width in widths.items() for i in range(width)
            ]
            self._csv.writerow(names)
            self._header_written = True
        columns = list(flat.values())
        self._csv.writerows(
            [number, *[x for rows in columns for x in rows[index]]] for index, number in enumerate(numbers)
        )

    def close(self) -> None:
        if self.suffix == ".npy":
            with self.path.open("wb") as stream:
                # `row` names each prediction's input row, as in the other formats: rows that
                # failed are missing, and without it every later prediction would look shifted.
                arrays = {name: np.concatenate(values) for name, values in self._npz.items()}
                index = "row" if "row" not in arrays else "_row"
                rows = np.concatenate(self._npz_rows) if self._npz_rows else np.asarray([], dtype=np.int64)
                np.savez(stream, **{**arrays, index: rows})
        elif self._stream is not None:
            self._stream.close()


def _row_texts(name: str, array: np.ndarray, count: int) -> list[str] | None:
    """`"name": <row's JSON>` for each of the `count` rows of a numeric output, exactly as
    json.dumps writes them, from one json.dumps of the whole array (a quarter faster than one
    call per row); None where that cannot be exact (strings, a first dimension that is not
    `count`), and the caller writes row by row."""
    if array.dtype.kind not in "biuf" or array.ndim == 0 or array.shape[0] != count:
        return None
    depth = array.ndim - 1
    text = json.dumps(array.tolist())
    # Numbers hold no brackets or commas, and within a row at most `depth` brackets close
    # in a row: the only places `depth` closing brackets meet ", " are between rows.
    pieces = text[depth + 1 : len(text) - depth - 1].split("]" * depth + ", " + "[" * depth)
    if len(pieces) != count:
        return None
    key = json.dumps(name)
    return [f"{key}: {'[' * depth}{piece}{']' * depth}" for piece in pieces]
