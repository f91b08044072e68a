"""The binary tensor data extension: where the JSON ends, which bytes belong to which input."""

from __future__ import annotations

import pytest

from maas.errors import InvalidInput
from maas.protocol import InferenceRequest, input_buffers, output_as_binary, split_body


def request(**fields: object) -> InferenceRequest:
    return InferenceRequest.model_validate(fields)


def test_a_body_without_the_header_is_all_json() -> None:
    assert split_body(b'{"inputs": []}', None) == (b'{"inputs": []}', b"")


def test_the_header_length_splits_json_from_binary() -> None:
    assert split_body(b"{}\x01\x02", "2") == (b"{}", b"\x01\x02")


@pytest.mark.parametrize(
    ("value", "message"),
    [("abc", "must be an integer"), ("99", "is 99 but the body has 4 bytes"), ("-1", "is -1")],
)
def test_a_bad_header_length_is_refused(value: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        split_body(b"{}\x01\x02", value)


def test_binary_inputs_take_their_declared_bytes_in_order() -> None:
    parsed = request(
        inputs=[
            {"name": "a", "shape": [1], "datatype": "UINT8", "parameters": {"binary_data_size": 1}},
            {"name": "b", "shape": [1], "datatype": "UINT8", "data": [7]},
            {"name": "c", "shape": [2], "datatype": "UINT8", "parameters": {"binary_data_size": 2}},
        ]
    )
    assert input_buffers(parsed, b"\x01\x02\x03") == [b"\x01", None, b"\x02\x03"]


def test_declared_sizes_must_add_up_to_the_binary_tail() -> None:
    parsed = request(
        inputs=[{"name": "a", "shape": [1], "datatype": "UINT8", "parameters": {"binary_data_size": 1}}]
    )
    with pytest.raises(InvalidInput, match="1 bytes of binary data that no input declares"):
        input_buffers(parsed, b"\x01\x02")
    with pytest.raises(InvalidInput, match="declares 1 bytes of binary data but only 0 remain"):
        input_buffers(parsed, b"")


def test_an_input_cannot_have_both_data_and_binary_data() -> None:
    parsed = request(
        inputs=[
            {
                "name": "a",
                "shape": [1],
                "datatype": "UINT8",
                "data": [1],
                "parameters": {"binary_data_size": 1},
            }
        ]
    )
    with pytest.raises(InvalidInput, match="has both data and binary_data_size"):
        input_buffers(parsed, b"\x01")


def test_binary_data_size_must_be_a_count() -> None:
    parsed = request(
        inputs=[{"name": "a", "shape": [1], "datatype": "UINT8", "parameters": {"binary_data_size": "1"}}]
    )
    with pytest.raises(InvalidInput, match="must be a non-negative integer"):
        input_buffers(parsed, b"\x01")


def test_outputs_are_json_unless_asked_for_as_binary() -> None:
    plain = request(inputs=[])
    assert not output_as_binary(plain, "y")
    everything = request(inputs=[], parameters={"binary_data_output": True})
    assert output_as_binary(everything, "y")
    # The output's own parameter wins over the request-wide one, as in Triton.
    mixed = request(
        inputs=[],
        parameters={"binary_data_output": True},
        outputs=[{"name": "y", "parameters": {"binary_data": False}}, {"name": "z"}],
    )
    assert not output_as_binary(mixed, "y")
    assert output_as_binary(mixed, "z")
