"""The OIP v2 tensor datatypes and their numpy equivalents."""

from __future__ import annotations

from enum import StrEnum

import numpy as np


class Datatype(StrEnum):
    BOOL = "BOOL"
    UINT8 = "UINT8"
    UINT16 = "UINT16"
    UINT32 = "UINT32"
    UINT64 = "UINT64"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FP16 = "FP16"
    FP32 = "FP32"
    FP64 = "FP64"
    BYTES = "BYTES"


# BYTES tensors are numpy object arrays holding `bytes`, as Triton's client does.
NUMPY_DTYPES: dict[Datatype, np.dtype] = {
    Datatype.BOOL: np.dtype(np.bool_),
    Datatype.UINT8: np.dtype(np.uint8),
    Datatype.UINT16: np.dtype(np.uint16),
    Datatype.UINT32: np.dtype(np.uint32),
    Datatype.UINT64: np.dtype(np.uint64),
    Datatype.INT8: np.dtype(np.int8),
    Datatype.INT16: np.dtype(np.int16),
    Datatype.INT32: np.dtype(np.int32),
    Datatype.INT64: np.dtype(np.int64),
    Datatype.FP16: np.dtype(np.float16),
    Datatype.FP32: np.dtype(np.float32),
    Datatype.FP64: np.dtype(np.float64),
    Datatype.BYTES: np.dtype(object),
}

_BY_NUMPY = {dtype: datatype for datatype, dtype in NUMPY_DTYPES.items() if datatype != Datatype.BYTES}


def datatype_of(dtype: np.dtype) -> Datatype:
    """The OIP datatype of a numpy dtype; strings and object arrays are BYTES.

    Raises ValueError for a dtype OIP cannot carry (complex, datetime...).
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "OSU":
        return Datatype.BYTES
    try:
        return _BY_NUMPY[dtype.newbyteorder("=")]
    except KeyError:
        raise ValueError(f"numpy dtype {dtype} has no Open Inference Protocol datatype") from None


def parse_datatype(value: str) -> Datatype:
    """The Datatype named by `value`; raises ValueError listing the valid names."""
    try:
        return Datatype(value)
    except ValueError:
        names = ", ".join(d.value for d in Datatype)
        raise ValueError(f"unknown datatype '{value}', expected one of {names}") from None
