"""Names of Triton's extensions shared by the pydantic schema (`maas.protocol.triton`) and the
request path's structs (`maas.protocol.wire`), importing neither pydantic nor msgspec."""

from __future__ import annotations

from enum import StrEnum

from maas.protocol.datatypes import Datatype

# OIP datatype -> Triton's DataType enum (model_config.proto); BYTES is Triton's TYPE_STRING.
TRITON_TYPES = {datatype: f"TYPE_{datatype.value}" for datatype in Datatype} | {Datatype.BYTES: "TYPE_STRING"}


class ModelState(StrEnum):
    """A model's state in the repository index, as Triton names the two a client acts on."""

    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"


__all__ = ["TRITON_TYPES", "ModelState"]
