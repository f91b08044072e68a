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


def sum_model(path: Path) -> Path:
    """`a` + `b` (FP32 [-1, 3]) -> `sum`, and their difference -> `difference`."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 3])
    total = helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 3])
    difference = helper.make_tensor_value_info("difference", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Sub", ["a", "b"], ["difference"])],
        "sum",
        [a, b],
        [total, difference],
    )
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
