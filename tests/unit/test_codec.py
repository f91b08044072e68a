"""Tensors in and out of OIP messages: every datatype, flat and nested, and every way input goes wrong."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from maas.errors import InvalidInput
from maas.protocol import Datatype, RequestInput, decode_tensor, encode_tensor, tensor_to_bytes

# A small value of every datatype, as a client would write it in JSON.
JSON_SAMPLES = {
    Datatype.BOOL: [True, False, True, True],
    Datatype.UINT8: [0, 1, 254, 255],
    Datatype.UINT16: [0, 1, 65534, 65535],
    Datatype.UINT32: [0, 1, 2, 4294967295],
    Datatype.UINT64: [0, 1, 2, 18446744073709551615],
    Datatype.INT8: [-128, -1, 0, 127],
    Datatype.INT16: [-32768, -1, 0, 32767],
    Datatype.INT32: [-2147483648, -1, 0, 2147483647],
    Datatype.INT64: [-9223372036854775808, -1, 0, 9223372036854775807],
    Datatype.FP16: [0.5, -1.0, 2.0, 65504.0],
    Datatype.FP32: [0.25, -1.5, 3.0, 1048576.0],
    Datatype.FP64: [0.1, -1e300, 3.0, 2.5],
    Datatype.BYTES: ["a", "héllo", "", "zz"],
}


def tensor(datatype: Datatype | str, shape: list[int], data: object, **parameters: object) -> RequestInput:
    return RequestInput(
        name="x", shape=shape, datatype=str(datatype), data=data, parameters=parameters or None
    )


@pytest.mark.parametrize("datatype", list(Datatype))
def test_every_datatype_decodes_flat_and_round_trips_through_json(datatype: Datatype) -> None:
    array = decode_tensor(tensor(datatype, [2, 2], JSON_SAMPLES[datatype]))
    assert array.shape == (2, 2)
    output, raw = encode_tensor("x", array, binary=False)
    assert raw is None
    assert output.datatype == datatype
    assert output.shape == [2, 2]
    assert output.data == JSON_SAMPLES[datatype]


@pytest.mark.parametrize("datatype", list(Datatype))
def test_every_datatype_round_trips_through_binary_data(datatype: Datatype) -> None:
    original = decode_tensor(tensor(datatype, [4], JSON_SAMPLES[datatype]))
    output, raw = encode_tensor("x", original, binary=True)
    assert output.data is None
    assert raw is not None
    assert output.parameters == {"binary_data_size": len(raw)}
    decoded = decode_tensor(RequestInput(name="x", shape=[4], datatype=datatype.value), raw)
    assert decoded.tolist() == original.tolist()


def test_binary_numbers_are_little_endian_row_major() -> None:
    array = np.array([[1, 2], [3, 4]], dtype=np.int16)
    assert tensor_to_bytes(array, Datatype.INT16) == b"\x01\x00\x02\x00\x03\x00\x04\x00"


def test_binary_bytes_elements_carry_a_four_byte_length_prefix() -> None:
    array = np.array([b"ab", b""], dtype=object)
    assert tensor_to_bytes(array, Datatype.BYTES) == b"\x02\x00\x00\x00ab\x00\x00\x00\x00"


def test_nested_data_is_read_row_major() -> None:
    nested = decode_tensor(tensor("FP32", [2, 3], [[1, 2, 3], [4, 5, 6]]))
    flat = decode_tensor(tensor("FP32", [2, 3], [1, 2, 3, 4, 5, 6]))
    assert nested.dtype == np.float32
    np.testing.assert_array_equal(nested, flat)
    assert nested[1].tolist() == [4, 5, 6]


def test_nested_bytes_are_flattened_row_major() -> None:
    array = decode_tensor(tensor("BYTES", [2, 2], [["a", "b"], ["c", "d"]]))
    assert array.tolist() == [[b"a", b"b"], [b"c", b"d"]]


def test_scalar_shape_takes_one_element() -> None:
    assert decode_tensor(tensor("INT32", [], [7])).tolist() == 7


def test_empty_tensor_is_allowed() -> None:
    assert decode_tensor(tensor("FP32", [0, 64], [])).shape == (0, 64)


def test_large_fp32_tensor_is_decoded_in_one_numpy_call() -> None:
    values = np.random.default_rng(0).random((1000, 64), dtype=np.float32)
    array = decode_tensor(tensor("FP32", [1000, 64], values.ravel().tolist()))
    np.testing.assert_array_equal(array, values)


@pytest.mark.parametrize(
    ("shape", "data", "message"),
    [
        ([2, 3], [1, 2, 3, 4, 5], "has 5 elements but shape [2, 3] needs 6"),
        ([3], [[1, 2], [3]], "ragged"),
        ([2, -1], [1, 2], "negative dimension"),
        ([2**40, 2**40], [1], "needs 1208925819614629174706176"),
    ],
)
def test_data_that_does_not_fit_the_shape_is_refused(shape: list[int], data: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        decode_tensor(tensor("FP32", shape, data))
    assert "input 'x'" in caught.value.message


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("BOOL", [1, 0], "BOOL takes true/false values only"),
        ("INT32", [1.5, 2.0], "INT32 takes integers only"),
        ("UINT8", [256], "value 256 is out of range for UINT8"),
        ("INT8", [-129], "value -129 is out of range for INT8"),
        ("UINT32", [-1], "value -1 is out of range for UINT32"),
        ("FP32", ["1.0"], "FP32 takes numbers only"),
        ("FP32", [None], "FP32 takes numbers only"),
        ("BYTES", [1], "BYTES element 0 is not a string"),
        ("FLOAT32", [1.0], "unknown datatype 'FLOAT32'"),
    ],
)
def test_values_of_the_wrong_kind_are_refused(datatype: str, data: list[object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        decode_tensor(tensor(datatype, [len(data)], data))


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("FP32", [1.0, float("nan")], "element 1 is nan; FP32 inputs must be finite numbers"),
        ("FP64", [float("-inf")], "element 0 is -inf; FP64 inputs must be finite numbers"),
        ("FP32", [1e300], "value 1e+300 at element 0 is out of range for FP32"),
        ("FP16", [1.0, 70000.0], "value 70000.0 at element 1 is out of range for FP16"),
    ],
)
def test_nan_infinity_and_overflow_are_refused(datatype: str, data: list[float], message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        decode_tensor(tensor(datatype, [len(data)], data))


def test_missing_data_is_refused() -> None:
    with pytest.raises(InvalidInput, match="input 'x' has no data"):
        decode_tensor(RequestInput(name="x", shape=[1], datatype="FP32"))


def test_base64_bytes_are_decoded_when_the_content_type_says_so() -> None:
    data = [base64.b64encode(b"\x00\xff").decode()]
    array = decode_tensor(tensor("BYTES", [1], data, content_type="base64"))
    assert array.tolist() == [b"\x00\xff"]


def test_invalid_base64_names_the_element() -> None:
    with pytest.raises(InvalidInput, match="BYTES element 1 is not valid base64"):
        decode_tensor(tensor("BYTES", [2], ["aGk=", "not base64!"], content_type="base64"))


@pytest.mark.parametrize(
    ("datatype", "raw", "message"),
    [
        ("FP32", b"\x00" * 7, "binary data has 7 bytes but 2 FP32 elements need 8"),
        ("BYTES", b"\x05\x00\x00\x00ab", "BYTES element 0 runs past the end"),
        ("BYTES", b"\x01\x00", "ends inside a length prefix"),
        ("BYTES", b"\x00\x00\x00\x00", "has 1 BYTES elements but its shape needs 2"),
    ],
)
def test_binary_data_of_the_wrong_size_is_refused(datatype: str, raw: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        decode_tensor(RequestInput(name="x", shape=[2], datatype=datatype), raw)


def test_non_utf8_bytes_outputs_must_go_as_binary() -> None:
    from maas.errors import InferenceError

    array = np.array([b"\xff"], dtype=object)
    with pytest.raises(InferenceError, match="request it with binary_data"):
        encode_tensor("y", array, binary=False)
    output, raw = encode_tensor("y", array, binary=True)
    assert output.parameters == {"binary_data_size": 5}
    assert raw == b"\x01\x00\x00\x00\xff"


def test_a_1000_by_64_fp32_request_is_decoded_without_walking_its_elements_in_python() -> None:
    import sys

    data = np.random.default_rng(1).random(64_000).tolist()
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        decode_tensor(tensor("FP32", [1000, 64], data))
    finally:
        sys.setprofile(None)
    # A handful of calls for the whole tensor, where a Python loop would make 64,000.
    assert calls < 100, calls
