"""Tiny models made from code, for tests: nothing is downloaded, nothing is trained but digits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper

from maas.protocol import Datatype

ONNX_TYPES = {
    Datatype.BOOL: TensorProto.BOOL,
    Datatype.UINT8: TensorProto.UINT8,
    Datatype.UINT16: TensorProto.UINT16,
    Datatype.UINT32: TensorProto.UINT32,
    Datatype.UINT64: TensorProto.UINT64,
    Datatype.INT8: TensorProto.INT8,
    Datatype.INT16: TensorProto.INT16,
    Datatype.INT32: TensorProto.INT32,
    Datatype.INT64: TensorProto.INT64,
    Datatype.FP16: TensorProto.FLOAT16,
    Datatype.FP32: TensorProto.FLOAT,
    Datatype.FP64: TensorProto.DOUBLE,
    Datatype.BYTES: TensorProto.STRING,
}


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def sum_model(path: Path, *, plus: float = 0.0) -> Path:
    """`a` + `b` (+ `plus`) (FP32 [-1, 3]) -> `sum`, and their difference -> `difference`.

    A different `plus` gives different bytes and different answers under the same signature:
    a second version of the same model.
    """
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 3])
    total = helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 3])
    difference = helper.make_tensor_value_info("difference", TensorProto.FLOAT, ["batch", 3])
    # Without `plus` the graph is byte for byte the one sum has always been.
    nodes = [
        helper.make_node("Add", ["a", "b"], ["plain_sum" if plus else "sum"]),
        helper.make_node("Sub", ["a", "b"], ["difference"]),
    ]
    initializers = []
    if plus:
        initializers.append(helper.make_tensor("plus", TensorProto.FLOAT, [], [plus]))
        nodes.append(helper.make_node("Add", ["plain_sum", "plus"], ["sum"]))
    graph = helper.make_graph(nodes, "sum", [a, b], [total, difference], initializer=initializers)
    return _save(graph, path)


def identity_model(path: Path) -> Path:
    """One input and one output per OIP datatype, each output a copy of its input (shape [-1])."""
    nodes, inputs, outputs = [], [], []
    for datatype, onnx_type in ONNX_TYPES.items():
        name = datatype.value.lower()
        inputs.append(helper.make_tensor_value_info(f"in_{name}", onnx_type, ["n"]))
        outputs.append(helper.make_tensor_value_info(f"out_{name}", onnx_type, ["n"]))
        nodes.append(helper.make_node("Identity", [f"in_{name}"], [f"out_{name}"]))
    return _save(helper.make_graph(nodes, "identity", inputs, outputs), path)


def broken_model(path: Path) -> Path:
    """A file named like an ONNX model that no runtime can load."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a protobuf")
    return path


def fixed_rows_model(path: Path, rows: int) -> Path:
    """`x` FP32 [rows, 4] -> `total` FP32 [rows], each row's sum: a model exported with a static batch."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, 4])
    total = helper.make_tensor_value_info("total", TensorProto.FLOAT, [rows])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    node = helper.make_node("ReduceSum", ["x", "axes"], ["total"], keepdims=0)
    return _save(helper.make_graph([node], "fixed_rows", [x], [total], initializer=[axes]), path)


def mixed_rows_model(path: Path) -> Path:
    """`a` FP32 [8, 4] and `b` FP32 [1, 4], copied out: inputs that disagree on their first dimension."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [8, 4])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4])
    out_a = helper.make_tensor_value_info("out_a", TensorProto.FLOAT, [8, 4])
    out_b = helper.make_tensor_value_info("out_b", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Identity", ["a"], ["out_a"]), helper.make_node("Identity", ["b"], ["out_b"])]
    return _save(helper.make_graph(nodes, "mixed_rows", [a, b], [out_a, out_b]), path)


def text_model(path: Path) -> Path:
    """`text` STRING [-1] and `count` INT64 [-1] -> `echo` (the text) and `doubled` (2 x count)."""
    text = helper.make_tensor_value_info("text", TensorProto.STRING, ["n"])
    count = helper.make_tensor_value_info("count", TensorProto.INT64, ["n"])
    echo = helper.make_tensor_value_info("echo", TensorProto.STRING, ["n"])
    doubled = helper.make_tensor_value_info("doubled", TensorProto.INT64, ["n"])
    nodes = [
        helper.make_node("Identity", ["text"], ["echo"]),
        helper.make_node("Add", ["count", "count"], ["doubled"]),
    ]
    return _save(helper.make_graph(nodes, "text", [text, count], [echo, doubled]), path)


def model_without_opset(path: Path) -> Path:
    """A well-formed ONNX protobuf that ONNX Runtime refuses, in a message naming its own source file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        helper.make_model(helper.make_graph([], "empty", [], []), opset_imports=[]).SerializeToString()
    )
    return path


# Hostile models: each lets the client choose how much work one request does.


def filled_model(path: Path) -> Path:
    """`shape` INT64 [2] -> `filled` FP32 [rows, cols] of ones: ConstantOfShape, the client choosing
    how much the model allocates (shape [16384, 16384] asks for 1 GiB)."""
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
    filled = helper.make_tensor_value_info("filled", TensorProto.FLOAT, ["rows", "cols"])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    node = helper.make_node("ConstantOfShape", ["shape"], ["filled"], value=one)
    return _save(helper.make_graph([node], "filled", [shape], [filled]), path)


def expanded_model(path: Path) -> Path:
    """`shape` INT64 [2] -> `expanded` FP32 [rows, cols]: a one broadcast by Expand to the client's shape."""
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
    expanded = helper.make_tensor_value_info("expanded", TensorProto.FLOAT, ["rows", "cols"])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    node = helper.make_node("Expand", ["one", "shape"], ["expanded"])
    return _save(helper.make_graph([node], "expanded", [shape], [expanded], initializer=[one]), path)


def looping_model(path: Path) -> Path:
    """`trips` INT64 scalar -> `count` FP32 [1]: a Loop adding one per trip, as many trips as the
    client asks (about a microsecond each: 10**12 trips would run for days)."""
    trips = helper.make_tensor_value_info("trips", TensorProto.INT64, [])
    count = helper.make_tensor_value_info("count", TensorProto.FLOAT, [1])
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["total_in", "one"], ["total_out"]),
        ],
        "trip",
        [
            helper.make_tensor_value_info("trip", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("total_in", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("total_out", TensorProto.FLOAT, [1]),
        ],
        initializer=[helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])],
    )
    node = helper.make_node("Loop", ["trips", "keep_going", "zero"], ["count"], body=body)
    initializers = [
        helper.make_tensor("keep_going", TensorProto.BOOL, [], [True]),
        helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
    ]
    return _save(helper.make_graph([node], "looping", [trips], [count], initializer=initializers), path)


def weighty_model(path: Path, megabytes: int, *, weight: float = 0.5) -> Path:
    """`x` FP32 [1] -> `y` FP32 [1]: sum(weight * x) over `megabytes` MB of weights, a model whose
    size on disk and in memory is about `megabytes`; another `weight` gives other bytes."""
    import numpy as np
    from onnx import numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    weights = numpy_helper.from_array(np.full(megabytes << 18, weight, dtype=np.float32), "w")
    nodes = [
        helper.make_node("Mul", ["w", "x"], ["scaled"]),
        helper.make_node("ReduceSum", ["scaled"], ["y"], keepdims=1),
    ]
    return _save(helper.make_graph(nodes, "weighty", [x], [y], initializer=[weights]), path)


def tflite_add_model(
    path: Path,
    *,
    buffer: int = 0,
    opcode_index: int = 0,
    shape: tuple[int, ...] = (1, 3),
    scales: tuple[float, ...] = (),
    signature_tensor: int = 0,
    identifier: bytes = b"TFL3",
) -> Path:
    """`a` + `b` (FP32 `shape`) -> `sum` as a TFLite flatbuffer, written here with the schema's
    slot numbers (no converter needed), with a signature `serving_default`. The keywords put one
    wrong number where a hostile file would: the buffer of `sum`, the ADD operator's code, the
    shape, quantization scales of `a`, the signature's first input tensor, the file identifier."""
    import flatbuffers

    writer = _TfliteWriter(flatbuffers.Builder(1024))
    build = writer.builder
    tensors = writer.tables(
        [
            writer.tensor("a", shape, scales=scales),
            writer.tensor("b", shape),
            writer.tensor("sum", shape, buffer=buffer),
        ]
    )
    build.StartObject(1)  # AddOptions: fused activation NONE
    add_options = build.EndObject()
    inputs, outputs = writer.ints([0, 1]), writer.ints([2])
    build.StartObject(14)  # Operator: opcode_index, inputs, outputs, builtin_options(_type)
    build.PrependUint32Slot(0, opcode_index, 0)
    build.PrependUOffsetTRelativeSlot(1, inputs, 0)
    build.PrependUOffsetTRelativeSlot(2, outputs, 0)
    build.PrependUint8Slot(3, 11, 0)  # BuiltinOptions.AddOptions
    build.PrependUOffsetTRelativeSlot(4, add_options, 0)
    operators = writer.tables([build.EndObject()])
    name, graph_inputs, graph_outputs = build.CreateString("main"), writer.ints([0, 1]), writer.ints([2])
    build.StartObject(6)  # SubGraph: tensors, inputs, outputs, operators, name
    for slot, offset in enumerate((tensors, graph_inputs, graph_outputs, operators, name)):
        build.PrependUOffsetTRelativeSlot(slot, offset, 0)
    subgraphs = writer.tables([build.EndObject()])
    build.StartObject(4)  # OperatorCode: deprecated_builtin_code, custom_code, version, builtin_code (ADD)
    build.PrependInt32Slot(2, 1, 1)
    codes = writer.tables([build.EndObject()])
    build.StartObject(3)  # Buffer: the empty sentinel every model starts with
    buffers = writer.tables([build.EndObject()])
    signatures = writer.tables([writer.signature({"a": signature_tensor, "b": 1}, {"sum": 2})])
    description = build.CreateString("maas test: a + b")
    build.StartObject(
        8
    )  # Model: version, operator_codes, subgraphs, description, buffers, ..., signature_defs
    build.PrependUint32Slot(0, 3, 0)
    for slot, offset in ((1, codes), (2, subgraphs), (3, description), (4, buffers), (7, signatures)):
        build.PrependUOffsetTRelativeSlot(slot, offset, 0)
    build.Finish(build.EndObject(), file_identifier=identifier)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build.Output())
    return path


class _TfliteWriter:
    """The pieces of a TFLite flatbuffer that tflite_add_model writes more than once."""

    def __init__(self, builder: Any) -> None:
        self.builder = builder

    def ints(self, values: tuple[int, ...] | list[int]) -> int:
        self.builder.StartVector(4, len(values), 4)
        for value in reversed(values):
            self.builder.PrependInt32(value)
        return int(self.builder.EndVector())

    def tables(self, offsets: list[int]) -> int:
        self.builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            self.builder.PrependUOffsetTRelative(offset)
        return int(self.builder.EndVector())

    def tensor(
        self, name: str, shape: tuple[int, ...], *, buffer: int = 0, scales: tuple[float, ...] = ()
    ) -> int:
        build = self.builder
        text, dims = build.CreateString(name), self.ints(shape)
        quantization = self.quantization(scales) if scales else None
        build.StartObject(11)  # Tensor: shape, type (FLOAT32), buffer, name, quantization
        build.PrependUOffsetTRelativeSlot(0, dims, 0)
        build.PrependUint32Slot(2, buffer, 0)
        build.PrependUOffsetTRelativeSlot(3, text, 0)
        if quantization is not None:
            build.PrependUOffsetTRelativeSlot(4, quantization, 0)
        return int(build.EndObject())

    def quantization(self, scales: tuple[float, ...]) -> int:
        build = self.builder
        build.StartVector(4, len(scales), 4)
        for scale in reversed(scales):
            build.PrependFloat32(scale)
        scale_vector = build.EndVector()
        build.StartVector(8, len(scales), 8)
        for _ in scales:
            build.PrependInt64(0)
        zero_points = build.EndVector()
        build.StartObject(7)  # QuantizationParameters: min, max, scale, zero_point, ...
        build.PrependUOffsetTRelativeSlot(2, scale_vector, 0)
        build.PrependUOffsetTRelativeSlot(3, zero_points, 0)
        return int(build.EndObject())

    def signature(self, inputs: dict[str, int], outputs: dict[str, int]) -> int:
        build = self.builder
        maps = [self.tables([self.tensor_map(n, i) for n, i in side.items()]) for side in (inputs, outputs)]
        key = build.CreateString("serving_default")
        build.StartObject(5)  # SignatureDef: inputs, outputs, signature_key, (deprecated tag), subgraph_index
        build.PrependUOffsetTRelativeSlot(0, maps[0], 0)
        build.PrependUOffsetTRelativeSlot(1, maps[1], 0)
        build.PrependUOffsetTRelativeSlot(2, key, 0)
        return int(build.EndObject())

    def tensor_map(self, name: str, index: int) -> int:
        text = self.builder.CreateString(name)
        self.builder.StartObject(2)  # TensorMap: name, tensor_index
        self.builder.PrependUOffsetTRelativeSlot(0, text, 0)
        self.builder.PrependUint32Slot(1, index, 0)
        return int(self.builder.EndObject())


def mutants(original: bytes, count: int, *, seed: int = 0) -> list[tuple[str, bytes]]:
    """`count` damaged copies of a model file, named by what was done to them, in turns: 10 bytes
    changed at random, the file cut short, and a 4-byte aligned word (where flatbuffers keep
    offsets and lengths, and protobuf keeps tags and lengths) overwritten with a large, small or
    random number. The same `seed` gives the same files."""
    import random

    rng = random.Random(seed)
    made = []
    for index in range(count):
        data = bytearray(original)
        if index % 3 == 0:
            for _ in range(10):
                data[rng.randrange(len(data))] = rng.randrange(256)
            name = "flipped"
        elif index % 3 == 1:
            data = data[: rng.randrange(len(data))]
            name = f"cut at {len(data)}"
        else:
            at = rng.randrange(len(data) - 4) & ~3
            value = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, len(data), 4, rng.randrange(1 << 32)])
            data[at : at + 4] = value.to_bytes(4, "little")
            name = f"word at {at} = {value:#x}"
        made.append((f"{index}: {name}", bytes(data)))
    return made


class CrashingRuntime:
    """A runtime (for RUNTIMES) whose load dies by SIGSEGV, as native code does on a file it
    misreads, or never returns for a file named `*hang*`. In the process whose pid a file's
    `.pid` neighbour holds (the caller that should have isolated it) it refuses instead, so a
    test of isolation fails rather than crashing the test run."""

    @classmethod
    def load(cls, path: Path, limits: object = None) -> Any:
        import os
        import signal
        import time

        from maas.errors import ArtifactError

        marker = path.with_suffix(".pid")
        if marker.exists() and marker.read_text() == str(os.getpid()):
            raise ArtifactError(f"'{path.name}' was loaded in the caller's own process")
        if "hang" in path.name:
            time.sleep(3600)
        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError("unreachable")


# Models whose signatures accept shapes their nodes refuse: ONNX Runtime fails at run time.


def unbroadcastable_add_model(path: Path) -> Path:
    """`a` FP32 [n] + `b` FP32 [m] -> `sum`: dynamic dims the signature cannot tie, so [3] + [2]
    passes the signature and fails in Add's broadcast."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n"])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["m"])
    total = helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["k"])
    node = helper.make_node("Add", ["a", "b"], ["sum"])
    return _save(helper.make_graph([node], "unbroadcastable_add", [a, b], [total]), path)


def square_reshape_model(path: Path) -> Path:
    """`x` FP32 [n] -> `square` FP32 [2, 2]: a Reshape that only four values fit."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    square = helper.make_tensor_value_info("square", TensorProto.FLOAT, [2, 2])
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [2, 2])
    node = helper.make_node("Reshape", ["x", "shape"], ["square"])
    return _save(helper.make_graph([node], "square_reshape", [x], [square], initializer=[shape]), path)


def identity_inputs(**given: dict[str, Any]) -> list[dict[str, Any]]:
    """OIP inputs for `identity_model`: two harmless values for each input, and the tensors of
    `given` (by input name, e.g. `in_bytes=...`) in place of theirs."""
    inputs = []
    for datatype in ONNX_TYPES:
        name = f"in_{datatype.value.lower()}"
        data: list[Any] = (
            [False, True]
            if datatype is Datatype.BOOL
            else ["a", "b"]
            if datatype is Datatype.BYTES
            else [0, 1]
        )
        inputs.append(given.get(name, {"name": name, "shape": [2], "datatype": datatype.value, "data": data}))
    return inputs
