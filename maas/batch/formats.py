"""Batch file formats: rows in (streamed), predictions and errors out.

- JSON Lines: each line an OIP-style `{"inputs": [{"name", "data", ...}]}` for one row, or a
  bare array (the row of a single-input model). Output: one JSON object per row.
- CSV: a header; columns named after an input (`input`, or `input_0`, `input_1`... for a
  vector) feed that input; a single-input model takes every column. Fields are numbers for
  numeric inputs (integers for INT/UINT, `true`/`false` or 1/0 for BOOL) and text for BYTES
  inputs. Output: CSV.
- NumPy `.npy`: an array of rows for a single-input model, memory-mapped. Output: `.npz`
  with one array per model output and `row`, the input row of each prediction.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.errors import InvalidInput
from maas.protocol.codec import decode_values
from maas.protocol.datatypes import Datatype

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from maas.runtimes import Signature, TensorSpec

FORMATS = (".jsonl", ".csv", ".npy")


@dataclass
class Row:
    """One input row: its number in the file, and its arrays or the reason it cannot be read."""

    number: int
    arrays: dict[str, np.ndarray] | None = None
    error: str | None = None


def format_of(key: str) -> str:
    for suffix in FORMATS:
        if key.endswith(suffix):
            return suffix
    raise InvalidInput(f"'{key}' is not a batch file maas reads (expected {', '.join(FORMATS)})")


def read_rows(path: Path, suffix: str, signature: Signature) -> Iterator[Row]:
    """Every row of the file at `path`, in order, read lazily."""
    if suffix == ".npy":
        yield from _npy_rows(path, signature)
        return
    with path.open("r", encoding="utf-8", errors="replace", newline="") as stream:
        if suffix == ".jsonl":
            yield from _jsonl_rows(stream, signature)
        else:
            yield from _csv_rows(stream, signature)


def _row_array(spec: TensorSpec, values: Any) -> np.ndarray:
    """One row of input `spec`, checked as the OIP API checks a tensor (kind, range, finite)."""
    try:
        array = decode_values(spec.name, values, spec.datatype)
    except InvalidInput as error:
        raise ValueError(error.message) from None
    row_shape = spec.shape[1:]
    if any(dim < 0 for dim in row_shape):
        return array
    expected = math.prod(row_shape)
    if array.size != expected:
        raise ValueError(f"input '{spec.name}' needs {expected} values per row, got {array.size}")
    return array.reshape(row_shape)


def _jsonl_rows(stream: io.TextIOBase, signature: Signature) -> Iterator[Row]:
    single = signature.inputs[0] if len(signature.inputs) == 1 else None
    for number, line in enumerate(stream):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
            if isinstance(document, list):
                if single is None:
                    raise ValueError("a bare array only fits a model with one input")
                values = {single.name: document}
            elif isinstance(document, dict) and isinstance(document.get("inputs"), list):
                values = {item["name"]: item["data"] for item in document["inputs"]}
            else:
                raise ValueError('expected {"inputs": [...]} or an array')
            arrays = {}
            for spec in signature.inputs:
                if spec.name not in values:
                    raise ValueError(f"missing input '{spec.name}'")
                arrays[spec.name] = _row_array(spec, values[spec.name])
            yield Row(number, arrays=arrays)
        except (ValueError, TypeError, KeyError) as error:
            yield Row(number, error=f"cannot read row: {error}")
        except RecursionError:
            # json.loads recurses per nesting level: a line of 200,000 brackets fails alone.
            yield Row(number, error="cannot read row: the JSON is nested too deeply")


def _csv_rows(stream: io.TextIOBase, signature: Signature) -> Iterator[Row]:
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise InvalidInput(f"the CSV header cannot be read: {error}") from None
    if header is None:
        return
    columns = _columns_by_input(header, signature)
    number = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            # One malformed record (a field over the csv module's size limit, a stray quote)
            # fails its row; the reader carries on at the next line.
            yield Row(number, error=f"cannot read row: {error}")
            number += 1
            continue
        try:
            if len(record) != len(header):
                raise ValueError(f"{len(record)} fields where the header has {len(header)}")
            arrays = {
                spec.name: _row_array(spec, [_csv_value(spec, record[i]) for i in columns[spec.name]])
                for spec in signature.inputs
            }
            yield Row(number, arrays=arrays)
        except ValueError as error:
            yield Row(number, error=f"cannot read row: {error}")
        number += 1


_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


def _csv_value(spec: TensorSpec, field: str) -> Any:
    """One CSV field as the JSON value the input's datatype takes (a field is always text)."""
    if spec.datatype is Datatype.BYTES:
        return field
    text = field.strip()
    if spec.datatype is Datatype.BOOL:
        if text.lower() not in _BOOLEANS:
            raise ValueError(f"input '{spec.name}' takes true/false, not '{field[:40]}'")
        return _BOOLEANS[text.lower()]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"input '{spec.name}' takes numbers, not '{field[:40]}'") from None


def _columns_by_input(header: list[str], signature: Signature) -> dict[str, list[int]]:
    """Which CSV columns feed each input, in the input's element order: `<input>` alone, or
    `<input>_0`, `<input>_1`... by their index (whatever their order in the header)."""
    if len(signature.inputs) == 1:
        return {signature.inputs[0].name: list(range(len(header)))}
    columns = {}
    for spec in signature.inputs:
        if spec.name in header:
            columns[spec.name] = [header.index(spec.name)]
            continue
        indexed = {}
        for position, name in enumerate(header):
            suffix = name[len(spec.name) + 1 :] if name.startswith(f"{spec.name}_") else ""
            if suffix.isascii() and suffix.isdigit():
                if int(suffix) in indexed:
                    raise InvalidInput(
                        f"the CSV header names element {int(suffix)} of input '{spec.name}' twice"
                    )
                indexed[int(suffix)] = position
        if not indexed:
            raise InvalidInput(f"the CSV header names no column for input '{spec.name}'")
        if sorted(indexed) != list(range(len(indexed))):
            raise InvalidInput(
                f"the CSV columns of input '{spec.name}' must be numbered {spec.name}_0 to "
                f"{spec.name}_{len(indexed) - 1}, got indices {sorted(indexed)}"
            )
        columns[spec.name] = [indexed[index] for index in range(len(indexed))]
    return columns


def _npy_rows(path: Path, signature: Signature) -> Iterator[Row]:
    if len(signature.inputs) != 1:
        raise InvalidInput("a .npy file feeds models with exactly one input")
    spec = signature.inputs[0]
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InvalidInput(f"not a NumPy array file: {error}") from None
    if array.ndim == 0:
        raise InvalidInput(
            f"the .npy file holds a single value (shape ()); it must hold an array of rows, "
            f"the first dimension counting rows for input '{spec.name}'"
        )
    for number in range(len(array)):
        try:
            yield Row(number, arrays={spec.name: _row_array(spec, array[number])})
        except ValueError as error:
            yield Row(number, error=f"cannot read row: {error}")


class OutputWriter:
    """Writes predictions, in row order, to a local file in the input's format."""

    def __init__(self, path: Path, suffix: str) -> None:
        self.path = path
        self.suffix = suffix
        self._npy: dict[str, list[np.ndarray]] = {}
        self._npy_rows: list[int] = []
        self._stream = None if suffix == ".npy" else path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._stream) if suffix == ".csv" and self._stream else None
        self._header_written = False

    def write(self, number: int, outputs: dict[str, np.ndarray]) -> None:
        if self.suffix == ".npy":
            # Collected per chunk as arrays; one row's worth is small and the chunks bound the count.
            for name, value in outputs.items():
                self._npy.setdefault(name, []).append(np.asarray(value))
            self._npy_rows.append(number)
            return
        assert self._stream is not None
        if self._csv is not None:
            flat = {name: np.asarray(value).ravel().tolist() for name, value in outputs.items()}
            if not self._header_written:
                names = ["row"] + [
                    f"{n}_{i}" if len(v) > 1 else n for n, v in flat.items() for i in range(len(v))
                ]
                self._csv.writerow(names)
                self._header_written = True
            self._csv.writerow([number] + [x for v in flat.values() for x in v])
            return
        record = {
            "row": number,
            "outputs": {name: np.asarray(value).tolist() for name, value in outputs.items()},
        }
        self._stream.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self.suffix == ".npy":
            with self.path.open("wb") as stream:
                # `row` names each prediction's input row, as in the other formats: rows that
                # failed are missing, and without it every later prediction would look shifted.
                arrays = {name: np.stack(values) for name, values in self._npy.items()}
                index = "row" if "row" not in arrays else "_row"
                np.savez(stream, **{**arrays, index: np.asarray(self._npy_rows, dtype=np.int64)})
        elif self._stream is not None:
            self._stream.close()
