"""Tensors between OIP messages and numpy arrays.

Numeric `data` is converted by numpy in one call (flat or nested, row-major), then
checked as a whole: element count against `shape`, value kind and range against
`datatype`. Nothing walks the elements in Python, so a 1000x64 FP32 request costs
one `np.asarray`. BYTES tensors are lists of strings and are walked, as in Triton.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.errors import InferenceError, InvalidInput
from maas.protocol.datatypes import NUMPY_DTYPES, Datatype, datatype_of, parse_datatype
from maas.protocol.wire import ResponseOutput, to_builtins

if TYPE_CHECKING:
    from collections.abc import Mapping

    from maas.protocol.wire import TensorInput

_LENGTH_PREFIX = struct.Struct("<I")
_INTEGER_KINDS = "iu"
_REAL_KINDS = "iuf"


def decode_tensor(tensor: TensorInput, binary: bytes | None = None) -> np.ndarray:
    """The numpy array an input carries, from its JSON `data` or from `binary` (the binary extension).

    Raises InvalidInput naming the input and what is wrong with it.
    """
    name = tensor.name
    try:
        datatype = parse_datatype(tensor.datatype)
    except ValueError as error:
        raise InvalidInput(f"input '{name}': {error}") from None
    shape = _checked_shape(name, tensor.shape)
    count = math.prod(shape)
    if binary is not None:
        array = _from_binary(name, binary, datatype, count)
    elif tensor.data is None:
        raise InvalidInput(f"input '{name}' has no data")
    else:
        array = decode_values(name, tensor.data, datatype, _content_type(tensor))
    if array.size != count:
        raise InvalidInput(f"input '{name}' has {array.size} elements but shape {shape} needs {count}")
    return array.reshape(shape)


def decode_values(name: str, data: Any, datatype: Datatype, content_type: str | None = None) -> np.ndarray:
    """JSON values (flat or nested) as a flat-or-nested numpy array of `datatype`, checked for
    kind, range and finiteness; raises InvalidInput naming input `name`. Shape is the caller's."""
    if datatype is Datatype.BYTES:
        return _bytes_from_json(name, data, content_type)
    return _numbers_from_json(name, data, datatype)


def encode_tensor(name: str, array: np.ndarray, *, binary: bool) -> tuple[ResponseOutput, bytes | None]:
    """The response output for `array`, with its data in JSON or, if `binary`, as raw bytes."""
    try:
        datatype = datatype_of(array.dtype)
    except ValueError as error:
        raise InferenceError(f"output '{name}': {error}") from None
    shape = list(array.shape)
    if binary:
        raw = tensor_to_bytes(array, datatype)
        output = ResponseOutput(
            name=name, shape=shape, datatype=datatype, parameters={"binary_data_size": len(raw)}
        )
        return output, raw
    if datatype is Datatype.BYTES:
        data: list[Any] = [_text(name, item) for item in array.ravel()]
    else:
        data = array.ravel().tolist()
    return ResponseOutput(name=name, shape=shape, datatype=datatype, data=data), None


def json_tensors(arrays: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """`arrays` as OIP JSON tensors (name, datatype, shape, data), as a client sends them to
    another OIP server (a Triton endpoint, a deployed maas API)."""
    return [to_builtins(encode_tensor(name, array, binary=False)[0]) for name, array in arrays.items()]


def tensor_from_json(item: Any) -> np.ndarray:
    """The array of an OIP JSON tensor another server sent; raises ValidationError or InvalidInput."""
    from maas.protocol.models import RequestInput  # pydantic: off the request path

    return decode_tensor(RequestInput.model_validate(item))


def tensor_to_bytes(array: np.ndarray, datatype: Datatype) -> bytes:
    """Raw bytes of a tensor as the binary extension lays them out: row-major, little-endian;
    BYTES elements each prefixed with their 4-byte length."""
    if datatype is Datatype.BYTES:
        parts = []
        for item in array.ravel():
            blob = item if isinstance(item, bytes) else str(item).encode()
            parts.append(_LENGTH_PREFIX.pack(len(blob)))
            parts.append(blob)
        return b"".join(parts)
    little_endian = NUMPY_DTYPES[datatype].newbyteorder("<")
    return np.ascontiguousarray(array, dtype=little_endian).tobytes()


def _checked_shape(name: str, shape: list[int]) -> list[int]:
    for dim in shape:
        if dim < 0:
            raise InvalidInput(f"input '{name}' has a negative dimension in shape {shape}")
    return shape


def _content_type(tensor: TensorInput) -> str | None:
    value = (tensor.parameters or {}).get("content_type")
    return value if isinstance(value, str) else None


def _numbers_from_json(name: str, data: Any, datatype: Datatype) -> np.ndarray:
    try:
        raw = np.asarray(data)
    except (ValueError, TypeError):
        raise InvalidInput(
            f"input '{name}': nested data is ragged, every row must have the same length"
        ) from None
    if raw.size == 0:
        return raw.astype(NUMPY_DTYPES[datatype])
    kind = raw.dtype.kind
    if kind in "fO" and datatype is Datatype.UINT64:
        # Integers past the int64 range make numpy infer float64 (losing digits) or objects.
        return _uint64_from_objects(name, data)
    if datatype is Datatype.BOOL:
        if kind != "b":
            raise InvalidInput(f"input '{name}': datatype BOOL takes true/false values only")
    elif datatype.value.startswith(("INT", "UINT")):
        if kind not in _INTEGER_KINDS:
            raise InvalidInput(f"input '{name}': datatype {datatype} takes integers only")
        _check_range(name, raw, datatype)
    elif kind not in _REAL_KINDS:
        raise InvalidInput(f"input '{name}': datatype {datatype} takes numbers only")
    else:
        return _finite_reals(name, raw, datatype)
    return raw.astype(NUMPY_DTYPES[datatype], copy=False)


def _finite_reals(name: str, raw: np.ndarray, datatype: Datatype) -> np.ndarray:
    """Real values cast to `datatype`, refusing NaN and infinities (JSON has neither, and a
    model fed them answers garbage), and values too large for the type (FP16 stops at 65504)."""
    with np.errstate(over="ignore", invalid="ignore"):
        array = raw.astype(NUMPY_DTYPES[datatype], copy=False)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        index = int(np.flatnonzero(~np.isfinite(array.ravel()))[0])
        original = raw.ravel()[index]
        if np.isfinite(original):
            raise InvalidInput(
                f"input '{name}': value {original} at element {index} is out of range for {datatype}"
            )
        raise InvalidInput(
            f"input '{name}': element {index} is {original}; {datatype} inputs must be finite numbers"
        )
    return array


def _uint64_from_objects(name: str, data: Any) -> np.ndarray:
    values = np.array(data, dtype=object).ravel().tolist()
    limit = int(np.iinfo(np.uint64).max)
    if not all(type(value) is int and 0 <= value <= limit for value in values):
        raise InvalidInput(f"input '{name}': datatype UINT64 takes integers in [0, {limit}] only")
    return np.array(values, dtype=np.uint64)


def _check_range(name: str, raw: np.ndarray, datatype: Datatype) -> None:
    info = np.iinfo(NUMPY_DTYPES[datatype])
    low, high = raw.min(), raw.max()
    if low < info.min or high > info.max:
        raise InvalidInput(
            f"input '{name}': value {low if low < info.min else high} is out of range for {datatype} "
            f"[{info.min}, {info.max}]"
        )


def _bytes_from_json(name: str, data: Any, content_type: str | None) -> np.ndarray:
    items: list[bytes] = []
    for index, item in enumerate(_flatten(data)):
        if not isinstance(item, str):
            raise InvalidInput(f"input '{name}': BYTES element {index} is not a string")
        if content_type == "base64":
            try:
                items.append(base64.b64decode(item, validate=True))
            except binascii.Error:
                raise InvalidInput(f"input '{name}': BYTES element {index} is not valid base64") from None
        else:
            items.append(item.encode())
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    stack = [iter(data)]
    # An explicit stack: deeply nested input must not hit Python's recursion limit.
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _from_binary(name: str, raw: bytes, datatype: Datatype, count: int) -> np.ndarray:
    if datatype is Datatype.BYTES:
        return _bytes_from_binary(name, raw, count)
    dtype = NUMPY_DTYPES[datatype]
    expected = count * dtype.itemsize
    if len(raw) != expected:
        raise InvalidInput(
            f"input '{name}': binary data has {len(raw)} bytes but {count} {datatype} elements need {expected}"
        )
    array = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False)
    return _finite_reals(name, array, datatype) if dtype.kind == "f" else array


def _bytes_from_binary(name: str, raw: bytes, count: int) -> np.ndarray:
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInput(f"input '{name}': BYTES binary data ends inside a length prefix")
        (length,) = _LENGTH_PREFIX.unpack_from(raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InvalidInput(f"input '{name}': BYTES element {len(items)} runs past the end of the data")
        items.append(raw[offset : offset + length])
        offset += length
    if len(items) != count:
        raise InvalidInput(f"input '{name}' has {len(items)} BYTES elements but its shape needs {count}")
    array = np.empty(count, dtype=object)
    array[:] = items
    return array


def _text(name: str, item: Any) -> str:
    if isinstance(item, bytes):
        try:
            return item.decode()
        except UnicodeDecodeError:
            raise InferenceError(
                f"output '{name}' holds bytes that are not UTF-8; request it with binary_data"
            ) from None
    return str(item)
