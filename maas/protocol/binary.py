"""The binary tensor data extension of Triton's HTTP/REST protocol.

A request or response body is a JSON header followed by raw tensor bytes; the
`Inference-Header-Content-Length` header tells where the JSON ends, and each
tensor that travels as bytes says how many in `parameters.binary_data_size`.
Triton's own clients use this by default, for inputs and for outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from maas.errors import InvalidInput

if TYPE_CHECKING:
    from maas.protocol.wire import Request

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_DATA_SIZE = "binary_data_size"


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tail of a request body.

    Without `header_length` the whole body is JSON. Raises InvalidInput if the
    header value is not a length within the body.
    """
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        raise InvalidInput(f"{HEADER_LENGTH} must be an integer, got '{header_length}'") from None
    if not 0 <= length <= len(body):
        raise InvalidInput(f"{HEADER_LENGTH} is {length} but the body has {len(body)} bytes")
    return body[:length], body[length:]


def input_buffers(request: Request, tail: bytes) -> list[bytes | None]:
    """For each input in order, its raw bytes if it travels as binary data, else None.

    Raises InvalidInput when the sizes the inputs declare do not add up to the tail.
    """
    buffers: list[bytes | None] = []
    offset = 0
    for tensor in request.inputs:
        size = (tensor.parameters or {}).get(BINARY_DATA_SIZE)
        if size is None:
            buffers.append(None)
            continue
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput(f"input '{tensor.name}': {BINARY_DATA_SIZE} must be a non-negative integer")
        if tensor.data is not None:
            raise InvalidInput(f"input '{tensor.name}' has both data and {BINARY_DATA_SIZE}")
        if offset + size > len(tail):
            raise InvalidInput(
                f"input '{tensor.name}' declares {size} bytes of binary data but only "
                f"{len(tail) - offset} remain in the body"
            )
        buffers.append(tail[offset : offset + size])
        offset += size
    if offset != len(tail):
        raise InvalidInput(f"the body has {len(tail) - offset} bytes of binary data that no input declares")
    return buffers


def output_as_binary(request: Request, name: str) -> bool:
    """Whether output `name` goes back as binary data: the output's own `binary_data`
    parameter wins, then the request's `binary_data_output`, else JSON."""
    for output in request.outputs or []:
        if output.name == name and output.parameters and "binary_data" in output.parameters:
            return bool(output.parameters["binary_data"])
    return bool((request.parameters or {}).get("binary_data_output", False))
