"""Structured pruning of dense layers: `maas optimize --prune RATIO`.

For MLP-style graphs (MatMul or Gemm layers with float weights, joined by elementwise
activations), each hidden layer loses the `RATIO` of its units whose weights matter least:
a unit's score is the norm of its incoming weights and bias times the norm of its outgoing
weights. The graph is rewritten with smaller matrices (columns of one layer, rows of the
next), so the file and the work shrink together. Layers whose output feeds anything but the
next dense layer (a residual branch, a second consumer, a graph output), or whose weights are
shared, are left as they are; a graph with no layer it can prune safely is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.errors import InvalidInput
from maas.optimize.exceptions import NotPrunable

if TYPE_CHECKING:
    from pathlib import Path

# Operators that act on each value alone: a hidden unit removed before them is removed after them.
ELEMENTWISE = frozenset(
    {"Relu", "LeakyRelu", "Tanh", "Sigmoid", "HardSigmoid", "Elu", "Selu", "Celu", "Gelu", "Softplus",
     "Softsign", "Identity", "Mish", "HardSwish", "ThresholdedRelu"}
)  # fmt: skip
_FLOAT = (1, 10, 11)  # TensorProto FLOAT, FLOAT16, DOUBLE


@dataclass
class _Dense:
    node: Any
    weight: Any  # TensorProto of the initializer
    transposed: bool  # stored [units out, features in] (Gemm transB=1)
    bias: Any | None
    output: str  # the tensor after the bias

    @property
    def units(self) -> int:
        return int(self.weight.dims[0] if self.transposed else self.weight.dims[1])


@dataclass(frozen=True)
class PrunedLayer:
    weight: str
    units_before: int
    units_after: int

    def note(self) -> str:
        return f"'{self.weight}': {self.units_before} -> {self.units_after} units"


def prune_model(source: Path, target: Path, *, ratio: float) -> tuple[PrunedLayer, ...]:
    """Write `source` with `ratio` of every prunable hidden layer's units removed to `target`;
    returns what was pruned. Raises InvalidInput for a ratio outside (0, 1) and NotPrunable,
    saying why, when no layer can be pruned safely."""
    import onnx
    from onnx import numpy_helper

    if not 0 < ratio < 1:
        raise InvalidInput(
            f"the prune ratio is the share of hidden units removed, above 0 and below 1; got {ratio}"
        )
    model = onnx.load(str(source))
    graph = model.graph
    pairs = _hidden_layers(graph)
    if not pairs:
        raise NotPrunable(_why_not(graph, source.name))
    pruned = []
    for first, second in pairs:
        incoming = numpy_helper.to_array(first.weight).astype(np.float64)
        outgoing = numpy_helper.to_array(second.weight).astype(np.float64)
        incoming_by_unit = incoming if first.transposed else incoming.T  # [units, in]
        outgoing_by_unit = outgoing.T if second.transposed else outgoing  # [units, out]
        norms = np.linalg.norm(incoming_by_unit, axis=1) ** 2
        if first.bias is not None:
            norms = norms + numpy_helper.to_array(first.bias).astype(np.float64).reshape(-1) ** 2
        scores = np.sqrt(norms) * np.linalg.norm(outgoing_by_unit, axis=1)
        kept_units = max(1, round(first.units * (1 - ratio)))
        keep = np.sort(np.argsort(-scores, kind="stable")[:kept_units])
        _take(first.weight, keep, axis=0 if first.transposed else 1)
        if first.bias is not None:
            _take(first.bias, keep, axis=-1)
        _take(second.weight, keep, axis=1 if second.transposed else 0)
        pruned.append(PrunedLayer(first.weight.name, len(scores), kept_units))
    # Shapes recorded for intermediate tensors are now wrong: ONNX Runtime infers them again.
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return tuple(pruned)


def _take(tensor: Any, keep: np.ndarray, *, axis: int) -> None:
    from onnx import numpy_helper

    values = np.take(numpy_helper.to_array(tensor), keep, axis=axis)
    tensor.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(values), tensor.name))


def _hidden_layers(graph: Any) -> list[tuple[_Dense, _Dense]]:
    """Pairs of dense layers where the first's output reaches only the second, through
    elementwise operators, with weights used nowhere else."""
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {output.name for output in graph.output} | {i.name for i in graph.input}
    dense_by_node = {}
    for node in graph.node:
        layer = _dense(node, initializers, consumers, outputs)
        if layer is not None:
            dense_by_node[id(node)] = layer
    pairs = []
    for layer in dense_by_node.values():
        following = _next_dense(layer.output, consumers, outputs, dense_by_node)
        if following is not None:
            pairs.append((layer, following))
    # A layer pruned as the first of one pair and the second of another is fine (rows, then
    # columns of different weights); a weight in two pairs at the same position cannot be.
    firsts = [first.weight.name for first, _ in pairs]
    return [pair for pair in pairs if firsts.count(pair[0].weight.name) == 1]


def _dense(
    node: Any, initializers: dict[str, Any], consumers: dict[str, list[Any]], outputs: set[str]
) -> _Dense | None:
    if node.domain not in ("", "ai.onnx") or node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
        return None
    weight = initializers.get(node.input[1])
    if (
        weight is None
        or weight.data_type not in _FLOAT
        or len(weight.dims) != 2
        or node.input[0] in initializers
    ):
        return None
    if len(consumers.get(weight.name, [])) != 1 or weight.name in outputs:
        return None  # a shared (tied) weight
    attributes = {a.name: a for a in node.attribute}
    if node.op_type == "Gemm" and attributes.get("transA") is not None and attributes["transA"].i:
        return None
    transposed = (
        node.op_type == "Gemm" and attributes.get("transB") is not None and bool(attributes["transB"].i)
    )
    units = weight.dims[0] if transposed else weight.dims[1]
    output, bias = node.output[0], None
    if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
        bias = initializers.get(node.input[2])
        if bias is None or not _is_bias(bias, units) or len(consumers.get(bias.name, [])) != 1:
            return None
    elif node.op_type == "MatMul":
        after = consumers.get(output, [])
        if len(after) == 1 and after[0].op_type == "Add" and output not in outputs:
            other = [name for name in after[0].input if name != output]
            candidate = initializers.get(other[0]) if len(other) == 1 else None
            if (
                candidate is not None
                and _is_bias(candidate, units)
                and len(consumers.get(candidate.name, [])) == 1
            ):
                bias, output = candidate, after[0].output[0]
    return _Dense(node, weight, transposed, bias, output)


def _is_bias(tensor: Any, units: int) -> bool:
    return tensor.data_type in _FLOAT and list(tensor.dims) in ([units], [1, units])


def _next_dense(
    tensor: str, consumers: dict[str, list[Any]], outputs: set[str], dense_by_node: dict[int, _Dense]
) -> _Dense | None:
    """The dense layer `tensor` flows into alone, through elementwise operators only."""
    while True:
        after = consumers.get(tensor, [])
        if tensor in outputs or len(after) != 1:
            return None
        node = after[0]
        layer = dense_by_node.get(id(node))
        if layer is not None:
            return layer if node.input[0] == tensor else None
        if node.op_type not in ELEMENTWISE or node.domain not in ("", "ai.onnx") or len(node.output) != 1:
            return None
        if any(name != tensor and name for name in node.input):
            return None  # an operator with a second input (a per-unit slope) is not elementwise here
        tensor = node.output[0]


def _why_not(graph: Any, name: str) -> str:
    operators = sorted({node.op_type for node in graph.node})
    quantized = [
        op
        for op in operators
        if op in ("MatMulInteger", "QLinearMatMul", "DynamicQuantizeLinear", "QuantizeLinear")
    ]
    reason = (
        f"'{name}' has no hidden dense layer maas can prune safely: pruning needs two MatMul or Gemm layers "
        "with float weights joined only by elementwise activations (an MLP), and finds none among its "
        f"operators ({', '.join(operators)})"
    )
    if quantized:
        reason += "; it is quantized already: prune the float model, then quantize (maas optimize --prune R --mode int8-dynamic)"
    return reason + ". Nothing was written."
