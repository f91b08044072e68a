"""Tiny models made from code, for tests: nothing is downloaded, nothing is trained but digits."""

from __future__ import annotations

from pathlib import Path

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
