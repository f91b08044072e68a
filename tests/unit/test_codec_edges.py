"""The codec's promises that mutation testing found no test holding (`make mutate`, notes in
RELIABILITY.md): every refusal names its tensor, binary outputs carry their name, shape and
datatype, binary floats are checked as JSON ones are, and tensors sent to another OIP server
read back as they were."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from maas.errors import InferenceError, InvalidInput
from maas.protocol import Datatype, RequestInput, decode_tensor, encode_tensor
from maas.protocol.codec import json_tensors, tensor_from_json


def binary_input(datatype: str, shape: list[int]) -> RequestInput:
    return RequestInput(name="pixels", shape=shape, datatype=datatype)


def refusal(tensor: RequestInput, raw: bytes | None = None) -> str:
    with pytest.raises(InvalidInput) as caught:
        decode_tensor(tensor, raw)
    return caught.value.message


@pytest.mark.parametrize(
    ("datatype", "raw"),
    [
        ("FP32", b"\x00" * 7),
        ("BYTES", b"\x05\x00\x00\x00ab"),
        ("FP32", struct.pack("<2f", 1.0, float("nan"))),
    ],
    ids=["short-numbers", "short-bytes", "nan"],
)
def test_a_refused_binary_input_is_named(datatype: str, raw: bytes) -> None:
    assert refusal(binary_input(datatype, [2]), raw).startswith("input 'pixels'")


@pytest.mark.parametrize(
    ("datatype", "values", "message"),
    [
        (
            "FP32",
            np.array([1.0, np.nan], dtype="<f4"),
            "element 1 is nan; FP32 inputs must be finite numbers",
        ),
        (
            "FP64",
            np.array([1.0, np.inf], dtype="<f8"),
            "element 1 is inf; FP64 inputs must be finite numbers",
        ),
        (
            "FP16",
            np.array([1.0, -np.inf], dtype="<f2"),
            "element 1 is -inf; FP16 inputs must be finite numbers",
        ),
    ],
)
def test_binary_floats_are_refused_as_json_ones_are(datatype: str, values: np.ndarray, message: str) -> None:
    """NaN and infinities are refused in binary data too, where no JSON parser stands in the way."""
    assert refusal(binary_input(datatype, [2]), values.tobytes()) == f"input 'pixels': {message}"


@pytest.mark.parametrize("datatype", ["INT32", "UINT8", "BOOL"])
def test_binary_integers_and_booleans_are_taken_as_they_are(datatype: str) -> None:
    array = np.array([1, 0, 1], dtype={"INT32": "<i4", "UINT8": "u1", "BOOL": "?"}[datatype])
    decoded = decode_tensor(binary_input(datatype, [3]), array.tobytes())
    assert decoded.tolist() == array.tolist()


def test_a_json_float_out_of_range_is_refused_naming_the_input() -> None:
    tensor = RequestInput(name="pixels", shape=[2], datatype="FP16", data=[1.0, 70000.0])
    assert refusal(tensor) == "input 'pixels': value 70000.0 at element 1 is out of range for FP16"


@pytest.mark.parametrize(
    ("data", "named"),
    [([-200, 5], -200), ([5, 300], 300), ([-128, 300], 300), ([-300, 300], -300)],
)
def test_an_integer_out_of_range_is_the_value_named(data: list[int], named: int) -> None:
    tensor = RequestInput(name="pixels", shape=[2], datatype="INT8", data=data)
    assert refusal(tensor) == f"input 'pixels': value {named} is out of range for INT8 [-128, 127]"


@pytest.mark.parametrize("data", [[2**64], [1, -(2**63) - 1]])
def test_a_uint64_value_outside_its_range_is_refused_naming_the_range(data: list[int]) -> None:
    tensor = RequestInput(name="ids", shape=[len(data)], datatype="UINT64", data=data)
    assert refusal(tensor) == f"input 'ids': datatype UINT64 takes integers in [0, {2**64 - 1}] only"


@pytest.mark.parametrize("datatype", ["INT32", "FP16", "BOOL", "UINT64"])
def test_an_empty_tensor_keeps_its_datatype(datatype: str) -> None:
    array = decode_tensor(RequestInput(name="x", shape=[0, 3], datatype=datatype, data=[]))
    assert array.shape == (0, 3)
    assert (
        array.dtype
        == {"INT32": np.int32, "FP16": np.float16, "BOOL": np.bool_, "UINT64": np.uint64}[datatype]
    )


def test_base64_with_a_character_outside_its_alphabet_is_refused() -> None:
    """Lenient decoding would drop the `*` and read "hello": a corrupted element must not pass."""
    tensor = RequestInput(
        name="docs", shape=[1], datatype="BYTES", data=["aGVsbG8=*"], parameters={"content_type": "base64"}
    )
    assert refusal(tensor) == "input 'docs': BYTES element 0 is not valid base64"


def test_a_binary_output_says_its_name_shape_and_datatype() -> None:
    output, raw = encode_tensor("probabilities", np.zeros((2, 3), dtype=np.float32), binary=True)
    assert (output.name, output.shape, output.datatype) == ("probabilities", [2, 3], Datatype.FP32)
    assert output.parameters == {"binary_data_size": 24}
    assert raw == b"\x00" * 24


def test_a_big_endian_output_is_sent_little_endian_as_the_binary_extension_says() -> None:
    """A runtime may hand back arrays in either byte order; the wire is little-endian."""
    _, raw = encode_tensor("y", np.array([1, 256], dtype=">i4"), binary=True)
    assert raw == struct.pack("<2i", 1, 256)
    _, raw = encode_tensor("y", np.array([1.5], dtype=">f8"), binary=True)
    assert raw == struct.pack("<d", 1.5)


def test_string_outputs_go_as_utf8_text_in_json_and_length_prefixed_in_binary() -> None:
    array = np.array(["héllo", "ok"])
    output, _ = encode_tensor("labels", array, binary=False)
    assert (output.datatype, output.data) == (Datatype.BYTES, ["héllo", "ok"])
    _, raw = encode_tensor("labels", array, binary=True)
    assert raw == struct.pack("<I", 6) + "héllo".encode() + struct.pack("<I", 2) + b"ok"


def test_an_output_of_a_type_oip_cannot_carry_is_refused_naming_it() -> None:
    with pytest.raises(InferenceError, match=re.escape("output 'z': numpy dtype complex64 has no")):
        encode_tensor("z", np.zeros(2, dtype=np.complex64), binary=False)


def test_non_utf8_bytes_in_a_json_output_are_refused_naming_the_output() -> None:
    with pytest.raises(InferenceError, match=r"^output 'blob' holds bytes that are not UTF-8"):
        encode_tensor("blob", np.array([b"\xff"], dtype=object), binary=False)


def test_tensors_sent_to_another_oip_server_read_back_as_they_were() -> None:
    """json_tensors writes what a Triton endpoint or a deployed maas API reads; tensor_from_json
    reads what they answer. Only the OIP fields, no nulls, as a strict server expects."""
    arrays = {"input": np.arange(6, dtype=np.float32).reshape(2, 3), "flag": np.array([True, False])}
    sent = json_tensors(arrays)
    assert sent == [
        {"name": "input", "datatype": "FP32", "shape": [2, 3], "data": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]},
        {"name": "flag", "datatype": "BOOL", "shape": [2], "data": [True, False]},
    ]
    for item, original in zip(sent, arrays.values(), strict=True):
        back = tensor_from_json(item)
        assert back.dtype == original.dtype
        assert back.tolist() == original.tolist()
