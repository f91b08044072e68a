"""Properties of the OIP codec, for any JSON a client may send (hypothesis): a tensor either
decodes to the shape it claims, or is refused with InvalidInput naming the input; and what
decodes, encodes back to the same values."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from maas.errors import InvalidInput
from maas.protocol import Datatype, RequestInput, decode_tensor, encode_tensor

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=40,
)
SHAPES = st.lists(st.integers(min_value=-3, max_value=10**19), max_size=4)


@settings(max_examples=600, deadline=None)
@given(datatype=st.sampled_from(list(Datatype)), shape=SHAPES, data=JSON_VALUES)
def test_any_tensor_decodes_to_its_shape_or_is_refused_by_name(
    datatype: Datatype, shape: list[int], data: object
) -> None:
    tensor = RequestInput(name="x", shape=shape, datatype=datatype.value, data=data)
    try:
        array = decode_tensor(tensor)
    except InvalidInput as error:
        assert "'x'" in error.message
        return
    assert list(array.shape) == shape
    assert array.size == math.prod(shape)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_fp32_values_round_trip_through_the_codec(values: list[float]) -> None:
    tensor = RequestInput(name="x", shape=[len(values)], datatype="FP32", data=values)
    array = decode_tensor(tensor)
    output, _ = encode_tensor("y", array, binary=False)
    assert np.array_equal(np.asarray(output.data, dtype=np.float32), np.asarray(values, dtype=np.float32))
