"""Whether a converted model answers as the original did, output by output.

Labels (integers, strings, booleans) must be equal row by row; real-valued outputs
(probabilities, scores, regression values) may differ by at most `tolerance`, absolute or
relative to the original's value, whichever is larger (NaN matches NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from maas.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Sequence

# Rows of both answers shown when they differ.
SHOWN_ROWS = 3


@dataclass(frozen=True)
class OutputCheck:
    """One output compared on the sample rows."""

    name: str
    exact: bool  # labels are compared for equality, reals within the tolerance
    rows: int
    differing_rows: tuple[int, ...]
    max_difference: float  # 0 for labels
    original: np.ndarray
    converted: np.ndarray

    @property
    def agrees(self) -> bool:
        return not self.differing_rows

    def line(self) -> str:
        if self.exact:
            what = f"labels equal on {self.rows - len(self.differing_rows)}/{self.rows} rows"
        else:
            what = f"largest difference {self.max_difference:.3g} ({len(self.differing_rows)} rows over the tolerance)"
        return f"'{self.name}': {what}"

    def first_row(self) -> str:
        """Row 0 as the original and the converted model answered it."""
        if not len(self.original) or not len(self.converted):
            return ""
        return f"  row 0: original {_values(self.original[0])}, converted {_values(self.converted[0])}"

    def both_answers(self) -> str:
        """The first differing rows as the original and the converted model answered them."""
        lines = []
        for row in self.differing_rows[:SHOWN_ROWS]:
            lines.append(
                f"  row {row}: original {_values(self.original[row])}, converted {_values(self.converted[row])}"
            )
        return "\n".join(lines)


def pair_outputs(
    original: dict[str, np.ndarray], converted: dict[str, np.ndarray], converted_order: Sequence[str]
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(converted name, original answer, converted answer) for every output of the original,
    matched by name, or by position when the converter renamed them all; raises InvalidInput
    when they cannot be matched."""
    if set(original) <= set(converted):
        return [(name, original[name], converted[name]) for name in original]
    if len(original) == len(converted_order):
        return [
            (name, value, converted[name])
            for name, value in zip(converted_order, original.values(), strict=True)
        ]
    raise InvalidInput(
        f"the converted model's outputs ({', '.join(converted_order)}) cannot be matched with the "
        f"original's ({', '.join(original)})"
    )


def check_output(name: str, original: np.ndarray, converted: np.ndarray, *, tolerance: float) -> OutputCheck:
    """Compare one output row by row."""
    original, converted = np.asarray(original), np.asarray(converted)
    rows = len(original) if original.ndim else 1
    if original.size == converted.size and original.shape != converted.shape:
        converted = converted.reshape(original.shape)  # [N] against [N, 1], say
    if original.shape != converted.shape:
        return OutputCheck(
            name, True, rows, tuple(range(rows)), float("inf"), _rows(original), _rows(converted)
        )
    original, converted = _rows(original), _rows(converted)
    exact = original.dtype.kind not in "fc" or converted.dtype.kind not in "fc"
    if exact:
        same = _as_comparable(original) == _as_comparable(converted)
        differing = np.flatnonzero(~same.reshape(len(same), -1).all(axis=1))
        return OutputCheck(name, True, rows, tuple(int(r) for r in differing), 0.0, original, converted)
    old, new = original.astype(np.float64), converted.astype(np.float64)
    difference = np.abs(old - new)
    both_nan = np.isnan(old) & np.isnan(new)
    difference[both_nan] = 0.0
    allowed = np.maximum(tolerance, tolerance * np.abs(np.nan_to_num(old)))
    over = (difference > allowed) | (np.isnan(difference))
    differing = np.flatnonzero(over.reshape(len(over), -1).any(axis=1))
    largest = float(np.nanmax(difference)) if difference.size else 0.0
    if np.isnan(difference).any():
        largest = float("nan")
    return OutputCheck(name, False, rows, tuple(int(r) for r in differing), largest, original, converted)


def _rows(array: np.ndarray) -> np.ndarray:
    return array.reshape(1) if array.ndim == 0 else array


def _as_comparable(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind in "OSU":
        return np.array(
            [value.decode() if isinstance(value, bytes) else str(value) for value in array.ravel()]
        ).reshape(array.shape)
    return array.astype(np.float64) if array.dtype.kind in "iub" else array


def _values(row: np.ndarray) -> str:
    values = np.asarray(row).ravel()
    if values.dtype.kind == "f":
        text = ", ".join(f"{value:.6g}" for value in values[:10])
    else:
        text = ", ".join(str(value.decode() if isinstance(value, bytes) else value) for value in values[:10])
    return f"[{text}{', ...' if values.size > 10 else ''}]"
