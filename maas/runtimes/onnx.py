"""ONNX Runtime: `.onnx` files on the CPU execution provider."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from maas.errors import ArtifactError, InferenceError, InvalidInput, without_paths
from maas.protocol.datatypes import Datatype
from maas.runtimes.base import Runtime, Signature, TensorSpec

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

_DATATYPES = {
    "tensor(bool)": Datatype.BOOL,
    "tensor(uint8)": Datatype.UINT8,
    "tensor(uint16)": Datatype.UINT16,
    "tensor(uint32)": Datatype.UINT32,
    "tensor(uint64)": Datatype.UINT64,
    "tensor(int8)": Datatype.INT8,
    "tensor(int16)": Datatype.INT16,
    "tensor(int32)": Datatype.INT32,
    "tensor(int64)": Datatype.INT64,
    "tensor(float16)": Datatype.FP16,
    "tensor(float)": Datatype.FP32,
    "tensor(double)": Datatype.FP64,
    "tensor(string)": Datatype.BYTES,
}


class OnnxRuntime(Runtime):
    platform = "onnxruntime_onnx"

    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session
        self.signature = Signature(
            inputs=tuple(_spec(arg) for arg in session.get_inputs()),
            outputs=tuple(_spec(arg) for arg in session.get_outputs()),
        )
        self._string_inputs = {spec.name for spec in self.signature.inputs if spec.datatype is Datatype.BYTES}

    @classmethod
    def load(cls, path: Path) -> OnnxRuntime:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initializers are noise in Lambda logs
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ORT raises its own untyped Fail/InvalidGraph/NoSuchFile errors
            raise ArtifactError(
                f"ONNX Runtime cannot load '{path.name}': {without_paths(str(error))}"
            ) from error
        return cls(session)

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {
            name: _as_strings(name, array) if name in self._string_inputs else array
            for name, array in inputs.items()
        }
        try:
            results = self._session.run(None, feed)
        except Exception as error:  # ORT's exceptions carry no useful type
            raise InferenceError(f"ONNX Runtime failed: {without_paths(str(error))}") from error
        return {
            spec.name: np.asarray(result)
            for spec, result in zip(self.signature.outputs, results, strict=True)
        }


def _spec(arg: Any) -> TensorSpec:
    try:
        datatype = _DATATYPES[arg.type]
    except KeyError:
        raise ArtifactError(
            f"'{arg.name}' is a {arg.type}, not a tensor; maas serves tensor inputs and outputs only "
            "(for scikit-learn classifiers, convert with options={'zipmap': False})"
        ) from None
    shape = tuple(dim if isinstance(dim, int) and dim >= 0 else -1 for dim in arg.shape)
    return TensorSpec(name=arg.name, datatype=datatype, shape=shape)


def _as_strings(name: str, array: np.ndarray) -> np.ndarray:
    # ORT string tensors want str objects; OIP BYTES arrive as bytes, which may be any bytes.
    as_text = np.empty(array.shape, dtype=object)
    texts = []
    for index, item in enumerate(array.flat):
        try:
            texts.append(item.decode() if isinstance(item, bytes) else item)
        except UnicodeDecodeError as error:
            raise InvalidInput(
                f"input '{name}': BYTES element {index} is not UTF-8 text "
                f"(byte {error.start}), and the model takes strings"
            ) from None
    as_text.flat[:] = texts
    return as_text
