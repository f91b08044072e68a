"""Batch file formats: rows in, streamed (outputs: maas.batch.writers; chunks: maas.batch.chunks).

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

import msgspec
import numpy as np

from maas.errors import InvalidInput
from maas.protocol.codec import decode_values
from maas.protocol.datatypes import Datatype

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from maas.runtimes import Signature, TensorSpec

FORMATS = (".jsonl", ".csv", ".npy")
_decode_json = msgspec.json.Decoder().decode


@dataclass
class Row:
    """One input row: its number in the file, and its arrays or the reason it cannot be read."""

    number: int
    arrays: dict[str, np.ndarray] | None = None
    error: str | None = None


@dataclass
class RawRow:
    """One input row as read, before it is checked: its number, the values of each input
    (JSON values, or a row of a .npy array) or the reason it cannot be read."""

    number: int
    values: dict[str, Any] | None = None
    error: str | None = None


def format_of(key: str) -> str:
    for suffix in FORMATS:
        if key.endswith(suffix):
            return suffix
    raise InvalidInput(f"'{key}' is not a batch file maas reads (expected {', '.join(FORMATS)})")


def read_rows(path: Path, suffix: str, signature: Signature, *, first_row: int = 0) -> Iterator[Row]:
    """Every row of the file at `path`, in order, read lazily and checked one by one; rows are
    numbered from `first_row` (a part of a split file starts where the part before it ended)."""
    for raw in read_raw_rows(path, suffix, signature, first_row=first_row):
        yield check_row(raw, signature)


def read_raw_rows(path: Path, suffix: str, signature: Signature, *, first_row: int = 0) -> Iterator[RawRow]:
    """Every row of the file at `path`, in order, read lazily but not yet checked against the
    signature (maas.batch.chunks checks a whole chunk at once)."""
    if suffix == ".npy":
        array = open_npy(path, signature)
        spec = signature.inputs[0]
        for index in range(len(array)):
            yield RawRow(first_row + index, values={spec.name: array[index]})
        return
    with path.open("r", encoding="utf-8", errors="replace", newline="") as stream:
        if suffix == ".jsonl":
            yield from _jsonl_rows(stream, signature, first_row)
        else:
            yield from _csv_rows(stream, signature, first_row)


def check_row(raw: RawRow, signature: Signature) -> Row:
    """`raw` checked as the OIP API checks a request's tensors, input by input."""
    if raw.values is None:
        return Row(raw.number, error=raw.error)
    try:
        arrays = {spec.name: row_array(spec, raw.values[spec.name]) for spec in signature.inputs}
    except (ValueError, TypeError) as error:
        return Row(raw.number, error=f"cannot read row: {error}")
    return Row(raw.number, arrays=arrays)


def row_array(spec: TensorSpec, values: Any) -> np.ndarray:
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


def _jsonl_rows(stream: io.TextIOBase, signature: Signature, first_row: int) -> Iterator[RawRow]:
    for number, line in enumerate(stream, start=first_row):
        row = jsonl_row(number, line, signature)
        if row is not None:
            yield row


def jsonl_row(number: int, line: str, signature: Signature) -> RawRow | None:
    """Row `number` of a JSON Lines file, from its `line`; None for a blank line (skipped)."""
    if not line.strip():
        return None
    try:
        document = _parse_json(line)
        if isinstance(document, list):
            if len(signature.inputs) != 1:
                raise ValueError("a bare array only fits a model with one input")
            values = {signature.inputs[0].name: document}
        elif isinstance(document, dict) and isinstance(document.get("inputs"), list):
            values = {item["name"]: item["data"] for item in document["inputs"]}
        else:
            raise ValueError('expected {"inputs": [...]} or an array')
        for spec in signature.inputs:
            if spec.name not in values:
                raise ValueError(f"missing input '{spec.name}'")
        return RawRow(number, values=values)
    except (ValueError, TypeError, KeyError) as error:
        return RawRow(number, error=f"cannot read row: {error}")
    except RecursionError:
        # json.loads recurses per nesting level: a line of 200,000 brackets fails alone.
        return RawRow(number, error="cannot read row: the JSON is nested too deeply")


def _parse_json(line: str) -> Any:
    """One line's JSON: msgspec's parser (about twice as fast), or, for anything it refuses
    (NaN, lone surrogates, numbers out of range), json's, so that what a row may hold and the
    reasons a row fails stay those of json.loads."""
    try:
        return _decode_json(line)
    except (msgspec.DecodeError, RecursionError):
        return json.loads(line)


def _csv_rows(stream: io.TextIOBase, signature: Signature, first_row: int) -> Iterator[RawRow]:
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise InvalidInput(f"the CSV header cannot be read: {error}") from None
    if header is None:
        return
    columns = _columns_by_input(header, signature)
    number = first_row
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            # One malformed record (a field over the csv module's size limit, a stray quote)
            # fails its row; the reader carries on at the next line.
            yield RawRow(number, error=f"cannot read row: {error}")
            number += 1
            continue
        try:
            if len(record) != len(header):
                raise ValueError(f"{len(record)} fields where the header has {len(header)}")
            values = {
                spec.name: [_csv_value(spec, record[i]) for i in columns[spec.name]]
                for spec in signature.inputs
            }
            yield RawRow(number, values=values)
        except ValueError as error:
            yield RawRow(number, error=f"cannot read row: {error}")
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


def open_npy(path: Path, signature: Signature) -> np.ndarray:
    """The array of rows in the .npy file at `path`, memory-mapped; InvalidInput if it cannot feed
    the model (not an array file, a single value, a model with more than one input)."""
    if len(signature.inputs) != 1:
        raise InvalidInput("a .npy file feeds models with exactly one input")
    spec = signature.inputs[0]
    try:
        array: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InvalidInput(f"not a NumPy array file: {error}") from None
    if array.ndim == 0:
        raise InvalidInput(
            f"the .npy file holds a single value (shape ()); it must hold an array of rows, "
            f"the first dimension counting rows for input '{spec.name}'"
        )
    return array
