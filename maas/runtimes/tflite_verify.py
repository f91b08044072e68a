"""A TFLite file checked before any interpreter reads it.

tflite-runtime's interpreter trusts its flatbuffer: an offset that points outside the file,
a vector longer than the file or a tensor index past the end makes it read out of bounds
and die by SIGSEGV or SIGBUS, with its process. ai-edge-litert runs flatbuffers' Verifier
first; tflite-runtime (the wheels for Python 3.11) does not, and flatbuffers ships no
verifier for Python. This is that check in Python: every table, vtable, vector and string
of the schema (`maas.runtimes.tflite_schema`) lies inside the file with the alignment the
Verifier requires, and the numbers the interpreter indexes with (operator codes, tensors,
buffers, subgraphs, quantization axes) point at something that exists.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from maas.errors import ArtifactError
from maas.runtimes.tflite_schema import TABLES, UNIONS

if TYPE_CHECKING:
    from pathlib import Path

IDENTIFIER = b"TFL3"
# flatbuffers' Verifier defaults: nesting, tables per file, and the size past which offsets wrap.
MAX_DEPTH = 64
MAX_TABLES = 1_000_000
MAX_SIZE = 2**31 - 1
_SCALARS = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str  # "scalar", "string", "table", "union", "vector"
    of: str = ""  # the table or union named; for a vector, the kind of its elements
    size: int = 0  # a scalar's bytes, or a vector element's


class _Invalid(Exception):
    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)


def verify_tflite_file(path: Path) -> None:
    """Raise ArtifactError naming the first thing in the file at `path` that is not a
    well-formed TFLite model an interpreter can read safely."""
    verified_tflite_bytes(path)


def verified_tflite_bytes(path: Path) -> bytes:
    """The bytes of the file at `path`, verified as `verify_tflite_file` does: hand these, not
    the path, to an interpreter, so that a file replaced after the check cannot reach it."""
    size = path.stat().st_size
    if size > MAX_SIZE:
        raise ArtifactError(f"'{path.name}' is {size} bytes; a TFLite flatbuffer is at most 2 GiB")
    content = path.read_bytes()
    verify_tflite(content, path.name)
    return content


def verify_tflite(data: bytes, name: str = "model.tflite") -> None:
    """Raise ArtifactError naming the first part of `data` that is not well-formed TFLite."""
    try:
        root = _Structure(data).verify()
        _Indices(data).verify(root)
    except _Invalid as error:
        raise ArtifactError(f"TFLite cannot load '{name}': not a valid TFLite file: {error}") from None


@cache
def _layout(table: str) -> tuple[_Field, ...]:
    fields = []
    for entry in TABLES[table].split():
        name, kind = entry.split(":")
        fields.append(_field(name, kind))
    return tuple(fields)


def _field(name: str, kind: str) -> _Field:
    if kind.startswith("["):
        element = _field(name, kind[1:-1])
        return _Field(
            name, "vector", of=element.kind if element.kind != "table" else element.of, size=element.size
        )
    if kind.isdigit():
        return _Field(name, "scalar", size=int(kind))
    if kind == "string":
        return _Field(name, "string")
    if kind.startswith("<"):
        return _Field(name, "union", of=kind[1:-1])
    return _Field(name, "table", of=kind)


@cache
def _slot(table: str, name: str) -> int:
    return next(i for i, field in enumerate(_layout(table)) if field.name == name)


def _union_member(union: str, type_number: int) -> str | None:
    members = UNIONS[union].split()
    if not 1 <= type_number <= len(members) or members[type_number - 1] == "-":
        return None  # NONE, or a type this schema does not know: the Verifier accepts both
    return members[type_number - 1]


class _Structure:
    """flatbuffers' Verifier over the TFLite schema: everything reachable from the root lies
    inside the buffer, aligned, with strings terminated and nesting bounded."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.tables = 0

    def verify(self) -> int:
        if self.size < 8:
            raise _Invalid("", f"{self.size} bytes is too short for a flatbuffer")
        if self.size > MAX_SIZE:
            raise _Invalid("", "a flatbuffer is at most 2 GiB")
        if self.data[4:8] != IDENTIFIER:
            raise _Invalid("", f"file identifier is {bytes(self.data[4:8])!r}, not {IDENTIFIER!r}")
        root = self._offset("root", 0)
        self._table("Model", root, "model", 1)
        return root

    def _span(self, where: str, pos: int, length: int, align: int = 1) -> None:
        if pos < 0 or length < 0 or pos + length > self.size:
            raise _Invalid(where, f"{length} bytes at byte {pos} lie outside the file ({self.size} bytes)")
        if pos % align:
            raise _Invalid(where, f"byte {pos} is not {align}-byte aligned")

    def _u32(self, pos: int) -> int:
        value: int = struct.unpack_from("<I", self.data, pos)[0]
        return value

    def _offset(self, where: str, pos: int) -> int:
        """Where the unsigned offset stored at `pos` points (checked to be inside the buffer)."""
        self._span(where, pos, 4, 4)
        offset = self._u32(pos)
        if offset == 0 or offset > MAX_SIZE:
            raise _Invalid(where, f"offset {offset} at byte {pos} is not a valid reference")
        self._span(where, pos + offset, 1)
        return pos + offset

    def _table(self, table: str, pos: int, where: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _Invalid(where, f"tables nest deeper than {MAX_DEPTH}")
        self.tables += 1
        if self.tables > MAX_TABLES:
            raise _Invalid(where, f"more than {MAX_TABLES} tables")
        self._span(where, pos, 4, 4)
        vtable = pos - struct.unpack_from("<i", self.data, pos)[0]
        self._span(f"{where} (vtable)", vtable, 2, 2)
        vtable_size = struct.unpack_from("<H", self.data, vtable)[0]
        if vtable_size % 2:
            raise _Invalid(f"{where} (vtable)", f"size {vtable_size} is odd")
        self._span(f"{where} (vtable)", vtable, vtable_size)
        fields = _layout(table)
        for slot, field in enumerate(fields):
            entry = 4 + 2 * slot
            if entry + 2 > vtable_size:
                break
            offset = struct.unpack_from("<H", self.data, vtable + entry)[0]
            if offset:
                union_type = self._union_type(pos, vtable, vtable_size, slot) if field.kind == "union" else 0
                self._value(field, pos + offset, f"{where}.{field.name}", depth, union_type)

    def _union_type(self, table: int, vtable: int, vtable_size: int, slot: int) -> int:
        entry = 4 + 2 * (slot - 1)  # a union's type is the slot before its value
        if entry + 2 > vtable_size:
            return 0
        offset = struct.unpack_from("<H", self.data, vtable + entry)[0]
        return self.data[table + offset] if offset else 0  # in bounds: verified as its own field

    def _value(self, field: _Field, pos: int, where: str, depth: int, union_type: int) -> None:
        if field.kind == "scalar":
            self._span(where, pos, field.size, field.size)
        elif field.kind == "string":
            self._string(where, self._offset(where, pos))
        elif field.kind == "table":
            self._table(field.of, self._offset(where, pos), where, depth + 1)
        elif field.kind == "union":
            member = _union_member(field.of, union_type)
            if member is not None:
                self._table(member, self._offset(where, pos), f"{where} ({member})", depth + 1)
        else:
            self._vector(field, self._offset(where, pos), where, depth)

    def _length(self, where: str, pos: int, element_size: int) -> int:
        self._span(where, pos, 4, 4)
        length = self._u32(pos)
        if length * element_size > MAX_SIZE:
            raise _Invalid(where, f"a length of {length} elements is past the end of any flatbuffer")
        self._span(where, pos + 4, length * element_size)
        return length

    def _string(self, where: str, pos: int) -> None:
        length = self._length(where, pos, 1)
        self._span(where, pos + 4 + length, 1)
        if self.data[pos + 4 + length] != 0:
            raise _Invalid(where, "string is not terminated")
        try:  # flatbuffers strings are UTF-8, and the interpreter's Python side decodes them
            self.data[pos + 4 : pos + 4 + length].decode()
        except UnicodeDecodeError as error:
            raise _Invalid(where, f"string is not UTF-8 (byte {error.start})") from None

    def _vector(self, field: _Field, pos: int, where: str, depth: int) -> None:
        if field.of == "scalar":
            self._length(where, pos, field.size)
            return
        length = self._length(where, pos, 4)
        for index in range(length):
            element = pos + 4 + 4 * index
            at = f"{where}[{index}]"
            if field.of == "string":
                self._string(at, self._offset(at, element))
            else:
                self._table(field.of, self._offset(at, element), at, depth + 1)


class _Indices:
    """The numbers the interpreter indexes with, in a structurally verified buffer: each must
    name an operator code, tensor, buffer or subgraph that exists, and quantization must
    describe its tensor."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def verify(self, model: int) -> None:
        codes = self._tables(model, "Model", "operator_codes")
        for index, code in enumerate(codes):
            for name in ("deprecated_builtin_code", "builtin_code"):
                if self._scalar(code, "OperatorCode", name, "<b" if name[0] == "d" else "<i") < 0:
                    raise _Invalid(f"model.operator_codes[{index}].{name}", "is negative")
        buffers = self._tables(model, "Model", "buffers")
        for index, buffer in enumerate(buffers):
            self._outside(buffer, "Buffer", "offset", "size", f"model.buffers[{index}]")
        subgraphs = self._tables(model, "Model", "subgraphs")
        if not subgraphs:
            raise _Invalid("model.subgraphs", "the model has no subgraph")
        tensor_counts = []
        for index, subgraph in enumerate(subgraphs):
            where = f"model.subgraphs[{index}]"
            tensors = self._tables(subgraph, "SubGraph", "tensors")
            tensor_counts.append(len(tensors))
            for position, tensor in enumerate(tensors):
                self._tensor(tensor, len(buffers), f"{where}.tensors[{position}]")
            for name in ("inputs", "outputs"):
                self._indices(subgraph, "SubGraph", name, len(tensors), f"{where}.{name}", lowest=0)
            for position, operator in enumerate(self._tables(subgraph, "SubGraph", "operators")):
                self._operator(
                    operator, len(codes), len(tensors), len(subgraphs), f"{where}.operators[{position}]"
                )
        for index, signature in enumerate(self._tables(model, "Model", "signature_defs")):
            self._signature(signature, tensor_counts, f"model.signature_defs[{index}]")
        for index, metadata in enumerate(self._tables(model, "Model", "metadata")):
            if self._scalar(metadata, "Metadata", "buffer", "<I") >= max(len(buffers), 1):
                raise _Invalid(f"model.metadata[{index}].buffer", f"names no buffer of {len(buffers)}")
        self._indices(model, "Model", "metadata_buffer", len(buffers), "model.metadata_buffer", lowest=0)

    def _tensor(self, tensor: int, buffers: int, where: str) -> None:
        buffer = self._scalar(tensor, "Tensor", "buffer", "<I")
        if buffer and buffer >= buffers:
            raise _Invalid(f"{where}.buffer", f"buffer {buffer} of {buffers}")
        shape = self._numbers(tensor, "Tensor", "shape", "i")
        if any(dim < 0 for dim in shape):
            raise _Invalid(f"{where}.shape", f"{shape} has a negative dimension")
        if any(dim < -1 for dim in self._numbers(tensor, "Tensor", "shape_signature", "i")):
            raise _Invalid(f"{where}.shape_signature", "has a dimension below -1")
        quantization = self._table(tensor, "Tensor", "quantization")
        if quantization is not None:
            self._quantization(quantization, shape, f"{where}.quantization")

    def _quantization(self, table: int, shape: list[int], where: str) -> None:
        scales = self._numbers(table, "QuantizationParameters", "scale", "f")
        if any(not math.isfinite(scale) or scale < 0 for scale in scales):
            raise _Invalid(f"{where}.scale", "a scale is negative or not finite")
        zero_points = self._numbers(table, "QuantizationParameters", "zero_point", "q")
        if scales and zero_points and len(scales) != len(zero_points):
            raise _Invalid(where, f"{len(scales)} scales but {len(zero_points)} zero points")
        if len(scales) > 1:
            axis = self._scalar(table, "QuantizationParameters", "quantized_dimension", "<i")
            if not 0 <= axis < len(shape) or shape[axis] != len(scales):
                raise _Invalid(
                    f"{where}.quantized_dimension", f"{len(scales)} scales do not fit axis {axis} of {shape}"
                )

    def _operator(self, operator: int, codes: int, tensors: int, subgraphs: int, where: str) -> None:
        opcode = self._scalar(operator, "Operator", "opcode_index", "<I")
        if opcode >= codes:
            raise _Invalid(f"{where}.opcode_index", f"operator code {opcode} of {codes}")
        for name in ("inputs", "outputs", "intermediates"):
            self._indices(operator, "Operator", name, tensors, f"{where}.{name}", lowest=-1)
        self._outside(operator, "Operator", "large_custom_options_offset", "large_custom_options_size", where)
        for union in ("builtin_options", "builtin_options_2"):
            member = _union_member(
                "BuiltinOptions" if union == "builtin_options" else "BuiltinOptions2",
                self._scalar(operator, "Operator", f"{union}_type", "<B"),
            )
            options = self._table(operator, "Operator", union)
            if member is None or options is None:
                continue
            # CallOptions.subgraph, IfOptions.then_subgraph_index, WhileOptions.body_subgraph_index...
            for field in _layout(member):
                if "subgraph" not in field.name:
                    continue
                at = f"{where}.{union}.{field.name}"
                if field.kind == "scalar" and field.size == 4:
                    if self._scalar(options, member, field.name, "<I") >= subgraphs:
                        raise _Invalid(at, f"names no subgraph of {subgraphs}")
                elif field.kind == "vector" and field.size == 4:
                    self._indices(options, member, field.name, subgraphs, at, lowest=0)

    def _signature(self, signature: int, tensor_counts: list[int], where: str) -> None:
        subgraph = self._scalar(signature, "SignatureDef", "subgraph_index", "<I")
        if subgraph >= len(tensor_counts):
            raise _Invalid(f"{where}.subgraph_index", f"names no subgraph of {len(tensor_counts)}")
        for name in ("inputs", "outputs"):
            for index, tensor_map in enumerate(self._tables(signature, "SignatureDef", name)):
                tensor = self._scalar(tensor_map, "TensorMap", "tensor_index", "<I")
                if tensor >= tensor_counts[subgraph]:
                    raise _Invalid(
                        f"{where}.{name}[{index}].tensor_index",
                        f"tensor {tensor} of {tensor_counts[subgraph]} in subgraph {subgraph}",
                    )

    def _outside(self, table: int, kind: str, offset_name: str, size_name: str, where: str) -> None:
        """Data kept after the flatbuffer (offset > 1, as large models store it) lies in the file."""
        offset = self._scalar(table, kind, offset_name, "<Q")
        size = self._scalar(table, kind, size_name, "<Q")
        if offset > 1 and offset + size > len(self.data):
            raise _Invalid(f"{where}.{offset_name}", f"{size} bytes at {offset} lie outside the file")

    def _indices(self, table: int, kind: str, name: str, count: int, where: str, *, lowest: int) -> None:
        for index in self._numbers(table, kind, name, "i"):
            if not lowest <= index < count:
                raise _Invalid(where, f"index {index} is outside {lowest}..{count - 1}")

    # Reading fields of a verified buffer.

    def _field(self, table: int, kind: str, name: str) -> int | None:
        vtable = table - struct.unpack_from("<i", self.data, table)[0]
        entry = 4 + 2 * _slot(kind, name)
        if entry + 2 > struct.unpack_from("<H", self.data, vtable)[0]:
            return None
        offset: int = struct.unpack_from("<H", self.data, vtable + entry)[0]
        return table + offset if offset else None

    def _scalar(self, table: int, kind: str, name: str, fmt: str) -> int:
        pos = self._field(table, kind, name)
        value: int = struct.unpack_from(fmt, self.data, pos)[0] if pos is not None else 0
        return value

    def _target(self, table: int, kind: str, name: str) -> int | None:
        pos = self._field(table, kind, name)
        return None if pos is None else pos + struct.unpack_from("<I", self.data, pos)[0]

    def _table(self, table: int, kind: str, name: str) -> int | None:
        return self._target(table, kind, name)

    def _tables(self, table: int, kind: str, name: str) -> list[int]:
        vector = self._target(table, kind, name)
        if vector is None:
            return []
        length = struct.unpack_from("<I", self.data, vector)[0]
        elements = [vector + 4 + 4 * index for index in range(length)]
        return [element + struct.unpack_from("<I", self.data, element)[0] for element in elements]

    def _numbers(self, table: int, kind: str, name: str, code: str) -> list:
        vector = self._target(table, kind, name)
        if vector is None:
            return []
        length = struct.unpack_from("<I", self.data, vector)[0]
        return list(struct.unpack_from(f"<{length}{code}", self.data, vector + 4))
