"""TFLite: `.tflite` files through tflite-runtime, or ai-edge-litert where that is installed.

Quantized inputs and outputs (int8, uint8, int16 with a scale) are presented as FP32:
clients send and receive real values, and this runtime applies scale and zero point.

Limits: TFLite's Python interpreter cannot be stopped once `invoke` runs (neither
tflite-runtime nor ai-edge-litert expose the C++ cancellation), so the deadline bounds
only the wait for the interpreter; Lambda's function timeout bounds the run itself. The
memory budget bounds the tensors that `allocate_tensors` plans for a request's shapes;
tensors a graph sizes while it runs (dynamic tensors) are not bounded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.errors import ArtifactError, BudgetExceeded, DeadlineExceeded, InferenceError, without_paths
from maas.protocol.datatypes import datatype_of
from maas.runtimes.base import Runtime, Signature, TensorSpec, model_file_size
from maas.runtimes.budget import NO_LIMITS, Limits
from maas.runtimes.tflite_verify import verified_tflite_bytes

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


def interpreter_class() -> Any:
    """The Interpreter class of whichever TFLite runtime is installed, tflite-runtime first."""
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ArtifactError(
                "no TFLite runtime is installed: pip install 'maas[tflite]' (tflite-runtime, Python <= 3.11) "
                "or 'maas[litert]' (ai-edge-litert)"
            ) from None
    return Interpreter


@dataclass(frozen=True)
class _Tensor:
    """Where a signature tensor lives in the interpreter, and how it is quantized."""

    name: str
    index: int
    dtype: np.dtype
    shape: tuple[int, ...]
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype.kind in "iu"

    def spec(self) -> TensorSpec:
        datatype = datatype_of(np.dtype(np.float32) if self.quantized else self.dtype)
        return TensorSpec(name=self.name, datatype=datatype, shape=self.shape)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        if not self.quantized:
            return values.astype(self.dtype, copy=False)
        info = np.iinfo(self.dtype)
        scaled = np.round(values.astype(np.float32) / self.scale) + self.zero_point
        quantized: np.ndarray = np.clip(scaled, info.min, info.max).astype(self.dtype)
        return quantized

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        if not self.quantized:
            return values
        return ((values.astype(np.float32) - self.zero_point) * self.scale).astype(np.float32)


class TfliteRuntime(Runtime):
    platform = "tensorflow_lite"

    def __init__(self, interpreter: Any, limits: Limits = NO_LIMITS, content: bytes = b"") -> None:
        self._interpreter = interpreter
        self.limits = limits
        # The model's bytes: a fresh interpreter is built from them to give back a grown arena.
        self._content = content
        # One interpreter holds one set of tensors: calls must not interleave.
        self._lock = threading.Lock()
        self._inputs, self._outputs = _signature_tensors(interpreter)
        # Shapes the interpreter is allocated for, so a request of the same shape skips resizing.
        self._allocated = _input_shapes(interpreter)
        # The most input elements the tensors were sized for: below it, memory cannot grow.
        self._checked_elements = _elements(self._allocated.values())
        self.signature = Signature(
            inputs=tuple(tensor.spec() for tensor in self._inputs),
            outputs=tuple(tensor.spec() for tensor in self._outputs),
        )

    @classmethod
    def load(cls, path: Path, limits: Limits = NO_LIMITS) -> TfliteRuntime:
        size = model_file_size(path, limits)
        interpreter_type = interpreter_class()
        # tflite-runtime trusts the flatbuffer (a damaged one crashes it): it gets the very bytes
        # verified, read whole rather than mapped, so the artifact cache may delete the file.
        content = verified_tflite_bytes(path)
        try:
            interpreter = interpreter_type(model_content=content)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ArtifactError(f"TFLite cannot load '{path.name}': {without_paths(str(error))}") from error
        if _over_budget(interpreter, size, limits):
            raise ArtifactError(
                f"TFLite model '{path.name}' plans more tensors than the {limits.memory_text()}"
            )
        runtime = cls(interpreter, limits, content)
        runtime.memory_bytes = size
        return runtime

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raises BudgetExceeded when the request's shapes need more tensors than the memory
        budget, DeadlineExceeded when the interpreter stays busy past the deadline, and
        InferenceError when TFLite fails."""
        wait = self.limits.deadline_seconds
        if not self._lock.acquire(timeout=-1 if wait is None else wait):
            raise DeadlineExceeded(f"waited for the model past the {self.limits.deadline_text()}")
        try:
            self._resize_for(inputs)
            for tensor in self._inputs:
                self._interpreter.set_tensor(tensor.index, tensor.quantize(inputs[tensor.name]))
            self._interpreter.invoke()
            return {
                tensor.name: tensor.dequantize(self._interpreter.get_tensor(tensor.index))
                for tensor in self._outputs
            }
        except (ValueError, RuntimeError) as error:
            raise InferenceError(f"TFLite failed: {without_paths(str(error))}") from error
        finally:
            self._lock.release()

    def _resize_for(self, inputs: Mapping[str, np.ndarray]) -> None:
        resized = False
        for tensor in self._inputs:
            wanted = inputs[tensor.name].shape
            if self._allocated.get(tensor.index) != wanted:
                self._interpreter.resize_tensor_input(tensor.index, list(wanted), strict=True)
                self._allocated[tensor.index] = wanted
                resized = True
        if not resized:
            return
        self._interpreter.allocate_tensors()
        elements = _elements(self._allocated.values())
        if elements <= self._checked_elements:
            return
        if _over_budget(self._interpreter, self.memory_bytes, self.limits):
            # TFLite keeps an arena at its largest: only a new interpreter gives the memory back.
            self._interpreter = interpreter_class()(model_content=self._content)
            self._interpreter.allocate_tensors()
            self._allocated = _input_shapes(self._interpreter)
            raise BudgetExceeded(f"needs more tensors for these shapes than the {self.limits.memory_text()}")
        self._checked_elements = elements


def _input_shapes(interpreter: Any) -> dict[int, tuple[int, ...]]:
    return {detail["index"]: tuple(detail["shape"]) for detail in interpreter.get_input_details()}


def _elements(shapes: Any) -> int:
    return sum(int(np.prod(shape)) for shape in shapes)


def _over_budget(interpreter: Any, weights: int, limits: Limits) -> bool:
    """Whether the planned tensors, less the weights (at most the model file's size), pass the budget."""
    if limits.memory_bytes is None:
        return False
    planned = sum(
        int(np.prod(detail["shape"])) * np.dtype(detail["dtype"]).itemsize
        for detail in interpreter.get_tensor_details()
    )
    return planned - weights > limits.memory_bytes


def _signature_tensors(interpreter: Any) -> tuple[list[_Tensor], list[_Tensor]]:
    """Inputs and outputs with their signature names where the model has a signature
    (a converted SavedModel's tensor names are internal, like 'serving_default_input:0')."""
    signatures = interpreter.get_signature_list()
    if signatures:
        runner = interpreter.get_signature_runner(next(iter(signatures)))
        named_inputs = runner.get_input_details()
        named_outputs = runner.get_output_details()
        by_index = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
        inputs = [_tensor(name, by_index[detail["index"]] | detail) for name, detail in named_inputs.items()]
        outputs = [
            _tensor(name, by_index[detail["index"]] | detail) for name, detail in named_outputs.items()
        ]
        return inputs, outputs
    return (
        [_tensor(detail["name"], detail) for detail in interpreter.get_input_details()],
        [_tensor(detail["name"], detail) for detail in interpreter.get_output_details()],
    )


def _tensor(name: str, detail: dict[str, Any]) -> _Tensor:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    shape = tuple(int(dim) for dim in detail.get("shape_signature", detail["shape"]))
    return _Tensor(
        name=name,
        index=int(detail["index"]),
        dtype=np.dtype(detail["dtype"]),
        shape=shape,
        scale=float(scale),
        zero_point=int(zero_point),
    )
