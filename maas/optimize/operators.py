"""Where a graph keeps its weights, and whether ONNX Runtime's quantizer can rewrite them.

The quantizer rewrites weight tensors fed to standard operators (MatMul, Conv, Gather...).
scikit-learn models converted by skl2onnx mostly keep their weights in the attributes of
ai.onnx.ml operators (TreeEnsembleRegressor, LinearClassifier, Scaler, SVMClassifier...),
which it leaves as they are: such a model is refused before the quantizer runs, naming them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from maas.errors import ArtifactError, InvalidInput, without_paths
from maas.optimize.exceptions import NotQuantizable

if TYPE_CHECKING:
    from pathlib import Path

ML_DOMAIN = "ai.onnx.ml"
_STANDARD_DOMAINS = ("", "ai.onnx")
_FLOAT_TENSORS = (1, 10)  # TensorProto FLOAT, FLOAT16: what the quantizer takes as weights
_QUANTIZED_TENSORS = (2, 3, 4, 5, 21, 22)  # UINT8, INT8, UINT16, INT16, UINT4, INT4
_WEIGHT_ATTRIBUTES = (4, 6, 9)  # AttributeProto TENSOR, FLOATS, TENSORS: weights held by an operator
_WEIGHTED_EXAMPLES = ("Add", "Conv", "Gather", "Gemm", "MatMul", "Mul")
# skl2onnx writes these as MatMul, Add, Sub and Div when told not to use them (black_op).
_REPLACEABLE = ("LinearClassifier", "LinearRegressor", "Normalizer", "Scaler")
_ADVICE = (
    (
        "TreeEnsemble",
        "a tree ensemble is as large as its nodes: fewer or shallower trees (n_estimators, max_depth) "
        "make it smaller",
    ),
    ("SVM", "an SVM holds its support vectors: a linear model (LinearSVC, LinearSVR) is far smaller"),
)


@dataclass(frozen=True)
class Weights:
    """The operator types that hold weights, split by whether the quantizer rewrites them."""

    quantizable: tuple[str, ...]
    kept_float: tuple[str, ...]  # ai.onnx.ml ones carry the suffix " (ai.onnx.ml)"

    @property
    def ml_operators(self) -> tuple[str, ...]:
        return tuple(label.split()[0] for label in self.kept_float if label.endswith(f"({ML_DOMAIN})"))


def read_graph(path: Path) -> Any:
    """The model's ONNX graph, without external weights; raises ArtifactError if it is none."""
    try:
        import onnx
    except ImportError:  # onnxruntime does not need it to serve, its quantizer does
        raise InvalidInput(
            "maas optimize reads the model's graph with the onnx package: pip install onnx"
        ) from None
    try:
        return onnx.load(str(path), load_external_data=False)
    except OSError as error:
        raise ArtifactError(f"cannot read '{path}': {error.strerror}") from None
    except Exception as error:  # protobuf's DecodeError and onnx's own
        raise ArtifactError(f"'{path.name}' is not an ONNX model: {without_paths(str(error))}") from None


def supported_operators(*, static: bool) -> frozenset[str]:
    """What the quantizer rewrites: IntegerOps for dynamic, QDQ and QLinear ops for static."""
    from onnxruntime.quantization.registry import IntegerOpsRegistry, QDQRegistry, QLinearOpsRegistry

    if static:
        return frozenset(QDQRegistry) | frozenset(QLinearOpsRegistry)
    return frozenset(IntegerOpsRegistry)


def weights_of(model: Any, *, static: bool) -> Weights:
    supported = supported_operators(static=static)
    float_tensors = {t.name for t in model.graph.initializer if t.data_type in _FLOAT_TENSORS}
    float_tensors |= {
        output
        for node in model.graph.node
        if node.op_type == "Constant" and any(a.t.data_type in _FLOAT_TENSORS for a in node.attribute)
        for output in node.output
    }
    quantizable: set[str] = set()
    kept: set[str] = set()
    for node in model.graph.node:
        if node.domain == ML_DOMAIN:
            if any(attribute.type in _WEIGHT_ATTRIBUTES for attribute in node.attribute):
                kept.add(f"{node.op_type} ({ML_DOMAIN})")
        elif node.domain in _STANDARD_DOMAINS and float_tensors.intersection(node.input):
            (quantizable if node.op_type in supported else kept).add(node.op_type)
    return Weights(quantizable=tuple(sorted(quantizable)), kept_float=tuple(sorted(kept)))


def refuse_unquantizable(model: Any, *, mode: str, name: str, size: int) -> Weights:
    """The graph's weights for `mode`; raises NotQuantizable, naming the operators that hold
    them and what to do instead, when the quantizer can rewrite none of them."""
    static = mode == "int8-static"
    weights = weights_of(model, static=static)
    if weights.quantizable:
        return weights
    if not weights.kept_float:
        raise NotQuantizable(f"'{name}' holds no weights for {mode} to quantize; nothing was written")
    rewritten = ", ".join(sorted(supported_operators(static=static).intersection(_WEIGHTED_EXAMPLES)))
    reason = f"{mode} cannot quantize '{name}': its weights are held by {', '.join(weights.kept_float)}, "
    if weights.ml_operators:
        reason += (
            "which onnxruntime's quantizer cannot rewrite: it quantizes the weight tensors of standard "
            f"operators ({rewritten}...), not the attributes of {ML_DOMAIN} ones"
        )
    else:
        reason += f"which {mode} does not quantize (it quantizes {rewritten}...)"
    advice = "; ".join(_advice(weights, static=static))
    raise NotQuantizable(
        f"{reason}. {advice[0].upper()}{advice[1:]}. Or serve the float model as it is ({size:,} bytes). "
        "Nothing was written."
    )


def _advice(weights: Weights, *, static: bool) -> list[str]:
    ml = weights.ml_operators
    advice = [text for prefix, text in _ADVICE if any(op.startswith(prefix) for op in ml)]
    replaceable = [op for op in ml if op in _REPLACEABLE]
    if replaceable:
        listed = ", ".join(f"'{op}'" for op in replaceable)
        advice.append(
            f"convert it with skl2onnx's to_onnx(..., black_op={{{listed}}}) to get MatMul and Add, "
            "which int8 quantization rewrites (worth it for wide inputs: a few hundred weights grow "
            "when quantized)"
        )
    standard = [op for op in weights.kept_float if not op.endswith(f"({ML_DOMAIN})")]
    if standard and not static and supported_operators(static=True).issuperset(standard):
        advice.append(f"--mode int8-static (with --calibration) quantizes {', '.join(standard)}")
    return advice or ["nothing in it can be made smaller by int8 quantization"]


def quantized_anything(original: Any, result: Any) -> bool:
    """Whether the quantizer wrote any low-bit tensor: it leaves a graph it cannot rewrite as it was."""

    def low_bit(model: Any) -> int:
        return sum(1 for t in model.graph.initializer if t.data_type in _QUANTIZED_TENSORS)

    return low_bit(result) > low_bit(original)


def refuse_non_tensor_outputs(model: Any, *, name: str) -> None:
    """Raises InvalidInput for outputs that are maps or sequences (skl2onnx's ZipMap): maas
    serves and scores tensors only, so their quality could not be checked."""
    for output in model.graph.output:
        kind = output.type.WhichOneof("value")
        if kind == "tensor_type":
            continue
        what = "a map" if kind == "map_type" else "a sequence"
        if kind == "sequence_type" and output.type.sequence_type.elem_type.WhichOneof("value") == "map_type":
            what = "a sequence of maps (skl2onnx's ZipMap)"
        raise InvalidInput(
            f"'{name}' outputs '{output.name}' as {what}: maas serves and scores tensors only, so it can "
            "neither check this model's quality nor serve the result. Convert the classifier again with "
            "to_onnx(..., options={'zipmap': False}): it then outputs 'label' and 'probabilities' tensors, "
            "and maas optimize scores the accuracy of 'label'. Nothing was written."
        )
