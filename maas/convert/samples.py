"""The rows a conversion is verified on: from a sample file, or generated from the inputs.

A sample file is a NumPy `.npz` with one array per model input (by name, rows first; strings
as NumPy unicode arrays), or a `.npy` array for a model with one input. Generated rows are
standard-normal floats and small non-negative integers; string inputs cannot be made up, so
a model that takes them needs a sample file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from maas.errors import InvalidInput

if TYPE_CHECKING:
    from pathlib import Path

GENERATED_ROWS = 64
SEED = 0


@dataclass(frozen=True)
class InputSpec:
    """One input of the source model: its name, NumPy dtype and shape (-1: any size)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]


def read_sample(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a sample file (`.npz`, or `.npy` named `input`); raises InvalidInput."""
    try:
        if path.suffix == ".npy":
            return {"input": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise InvalidInput(f"sample file {path} is not a NumPy .npz or .npy file: {error}") from None
    if not arrays:
        raise InvalidInput(f"sample file {path} holds no arrays")
    return arrays


def check_sample(
    arrays: dict[str, np.ndarray], specs: list[InputSpec], path: Path | str
) -> dict[str, np.ndarray]:
    """The sample's arrays for `specs`, cast to their dtypes; raises InvalidInput naming a
    missing input, a wrong shape, rows that differ in number, or an empty sample."""
    if len(specs) == 1 and specs[0].name not in arrays and len(arrays) == 1:
        arrays = {specs[0].name: next(iter(arrays.values()))}  # one input: its name may differ
    chosen = {}
    for spec in specs:
        if spec.name not in arrays:
            raise InvalidInput(f"sample file {path} lacks input '{spec.name}' (it holds {', '.join(arrays)})")
        array = arrays[spec.name]
        if array.ndim == len(spec.shape) - 1 and len(spec.shape) == 2 and spec.shape[1] == 1:
            array = array[:, None]  # a column given as a flat list of rows
        if array.ndim != len(spec.shape) or any(
            want not in (-1, got) for want, got in zip(spec.shape, array.shape, strict=True)
        ):
            raise InvalidInput(
                f"sample input '{spec.name}' has shape {list(array.shape)}, the model takes {_shape(spec)}"
            )
        chosen[spec.name] = _cast(array, spec)
    rows = {len(array) for array in chosen.values()}
    if len(rows) != 1 or 0 in rows:
        raise InvalidInput(f"sample file {path} needs the same number of rows, at least one, in every input")
    return chosen


def generated_rows(specs: list[InputSpec], rows: int = GENERATED_ROWS) -> dict[str, np.ndarray]:
    """Rows made up for `specs`; raises InvalidInput for a string input or an unknown size."""
    generator = np.random.default_rng(SEED)
    made = {}
    for spec in specs:
        if any(dim < 0 for dim in spec.shape[1:]):
            raise InvalidInput(
                f"input '{spec.name}' has shape {_shape(spec)}: rows of unknown size cannot be made up; "
                "give some with --sample FILE"
            )
        # A model exported for a fixed batch takes exactly that many rows.
        shape = (spec.shape[0] if spec.shape[0] > 0 else rows, *spec.shape[1:])
        if spec.dtype.kind in "OSU":
            raise InvalidInput(
                f"input '{spec.name}' takes strings, which cannot be made up: give rows with --sample FILE "
                "(.npz, one array per input)"
            )
        if spec.dtype.kind == "f":
            made[spec.name] = generator.standard_normal(shape).astype(spec.dtype)
        elif spec.dtype.kind == "b":
            made[spec.name] = generator.integers(0, 2, shape).astype(bool)
        else:
            made[spec.name] = generator.integers(0, 10, shape).astype(spec.dtype)
    return made


def _cast(array: np.ndarray, spec: InputSpec) -> np.ndarray:
    if spec.dtype.kind in "OSU":
        if array.dtype.kind not in "OSU":
            raise InvalidInput(f"sample input '{spec.name}' must hold strings, it holds {array.dtype}")
        return array.astype(str)
    if array.dtype.kind in "OSU":
        raise InvalidInput(f"sample input '{spec.name}' holds strings, the model takes {spec.dtype}")
    return array.astype(spec.dtype)


def _shape(spec: InputSpec) -> str:
    return "[" + ", ".join("N" if dim < 0 else str(dim) for dim in spec.shape) + "]"
