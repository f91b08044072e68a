"""ONNX Runtime: `.onnx` files on the CPU execution provider, within a request's limits.

Memory: ONNX Runtime bounds what a run allocates only through an arena's `max_mem`, and the
one arena its Python API lets us configure is shared by the whole process
(`create_and_register_allocator`, used by sessions with `session.use_env_allocators`). So
the memory budget is the process's: in Lambda, which runs one request at a time per
process, it is one request's. Weights are not allocated from it, only activations and
outputs. Each run ends by shrinking the arena (`memory.enable_memory_arena_shrinkage`),
and `release` shrinks it again once large outputs are dropped, so memory goes back to the
system after a request instead of staying at its high-water mark.

Time: a run is stopped at its deadline with `RunOptions.terminate`, which ONNX Runtime
checks between nodes, including between the iterations of a Loop.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, RuntimeException

from maas.errors import (
    ArtifactError,
    BudgetExceeded,
    ConfigError,
    DeadlineExceeded,
    InferenceError,
    InvalidInput,
    without_paths,
)
from maas.protocol.datatypes import Datatype
from maas.runtimes.base import Runtime, Signature, TensorSpec, model_file_size
from maas.runtimes.budget import MB, NO_LIMITS, WATCHDOG, Limits

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

# BFCArena's refusal: "Available memory of 134217728 is smaller than requested bytes of 1073741824".
_ARENA_REFUSAL = re.compile(r"smaller than requested bytes of (\d+)")
# A kernel's refusal of shapes it was given ("Attempting to broadcast an axis", "cannot be
# reshaped", "MatMul dimension mismatch", "Input channels C is not equal to kernel channels"):
# ORT raises these as FAIL or RUNTIME_EXCEPTION, the same codes as its own faults.
_SHAPE_REFUSAL = re.compile(r"broadcast|reshape|dimension|shape|\brank\b|channels|mismatch", re.IGNORECASE)
# "Non-zero status code returned while running Add node. Name:'' Status Message: <file>:<line> ..."
_NODE_FAILURE = re.compile(r"while running (\w+) node\..*?Status Message: (.*)", re.DOTALL)
# "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : ", before every message.
_ORT_CODE = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
# ORT_ENFORCE's "<file>:<line> <function> <condition> was false. <message>", or "<file>:<line> <message>".
_ENFORCE_PREFIX = re.compile(r"^(?:.*? was false\. |\S+:\d+ )")
# What the arena keeps of what requests used: below it, a request reuses pages instead of
# faulting fresh ones in; above it, memory goes back to the system after the request.
_KEPT_WARM_BYTES = 16 * MB
# Outputs past this size hold arena memory until they are dropped; `release` then returns it.
_RELEASE_AFTER_BYTES = 1 * MB
# y = x + x on FP32 [1]: the smallest run that allocates from the shared arena, serialized
# here so that shrinking it needs no model file and no onnx package.
_SHRINKER_MODEL = (
    b'\x08\x07\x12\x00:5\n\x0e\n\x01x\n\x01x\x12\x01y"\x03Add\x12\x01gZ\x0f\n\x01x\x12\n'
    b"\n\x08\x08\x01\x12\x04\n\x02\x08\x01b\x0f\n\x01y\x12\n\n\x08\x08\x01\x12\x04\n\x02\x08\x01B\x04\n\x00\x10\r"
)


class _SharedArena:
    """The process's CPU arena, capped at one request's memory budget, created on first use."""

    def __init__(self) -> None:
        self.max_bytes: int | None = None
        self._shrinker: ort.InferenceSession | None = None
        self._lock = threading.Lock()
        self._zero = np.zeros(1, dtype=np.float32)

    def use(self, max_bytes: int) -> None:
        """Create the arena with `max_bytes` if there is none yet; raises ConfigError if the
        process's arena was created with another budget (ONNX Runtime cannot change it)."""
        with self._lock:
            if self.max_bytes is None:
                config = ort.OrtArenaCfg(
                    {
                        "max_mem": max_bytes,
                        # kNextPowerOfTwo: with kSameAsRequested, shrinking returned no memory when measured.
                        "arena_extend_strategy": 0,
                        # The first region is never returned: it keeps small requests' pages warm.
                        "initial_chunk_size_bytes": min(_KEPT_WARM_BYTES, max_bytes),
                    }
                )
                cpu = ort.OrtMemoryInfo(
                    "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
                )
                ort.create_and_register_allocator(cpu, config)
                self._shrinker = ort.InferenceSession(
                    _SHRINKER_MODEL, _session_options(arena=True), providers=["CPUExecutionProvider"]
                )
                self.max_bytes = max_bytes
                # The arena never returns its first region: let that be this run's few bytes.
                self.shrink()
            elif self.max_bytes != max_bytes:
                raise ConfigError(
                    f"ONNX Runtime's memory budget is one per process and is already "
                    f"{self.max_bytes / MB:g} MB; it cannot also be {max_bytes / MB:g} MB"
                )

    def shrink(self) -> None:
        """Return the arena's free regions to the system."""
        if self._shrinker is not None:
            self._shrinker.run(None, {"x": self._zero}, _run_options(shrink=True))


_ARENA = _SharedArena()


class OnnxRuntime(Runtime):
    platform = "onnxruntime_onnx"

    def __init__(self, session: ort.InferenceSession, limits: Limits = NO_LIMITS) -> None:
        self._session = session
        self.limits = limits
        self.signature = Signature(
            inputs=tuple(_spec(arg) for arg in session.get_inputs()),
            outputs=tuple(_spec(arg) for arg in session.get_outputs()),
        )
        self._string_inputs = {spec.name for spec in self.signature.inputs if spec.datatype is Datatype.BYTES}
        self._shrinks = limits.memory_bytes is not None
        self._holds_large_outputs = False

    @classmethod
    def load(cls, path: Path, limits: Limits = NO_LIMITS) -> OnnxRuntime:
        size = model_file_size(path, limits)
        if limits.memory_bytes is not None:
            _ARENA.use(limits.memory_bytes)
        options = _session_options(arena=limits.memory_bytes is not None)
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ORT raises its own untyped Fail/InvalidGraph/NoSuchFile errors
            raise ArtifactError(
                f"ONNX Runtime cannot load '{path.name}': {without_paths(str(error))}"
            ) from error
        runtime = cls(session, limits)
        runtime.memory_bytes = size
        return runtime

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raises BudgetExceeded past the memory budget, DeadlineExceeded past the deadline,
        InvalidInput for strings that are not text and for inputs the model's nodes refuse
        (shapes that cannot broadcast or reshape), and InferenceError for any other failure."""
        feed = {
            name: _as_strings(name, array) if name in self._string_inputs else array
            for name, array in inputs.items()
        }
        options = _run_options(shrink=self._shrinks)
        with WATCHDOG.watch(
            self.limits.deadline_seconds, lambda: setattr(options, "terminate", True)
        ) as watch:
            try:
                results = self._session.run(None, feed, options)
            except Exception as error:  # ORT's exceptions carry no useful type
                raise self._failure(error, stopped=watch.fired) from error
        outputs = {
            spec.name: np.asarray(result)
            for spec, result in zip(self.signature.outputs, results, strict=True)
        }
        if self._shrinks:
            self._holds_large_outputs = sum(array.nbytes for array in outputs.values()) > _RELEASE_AFTER_BYTES
        return outputs

    def release(self) -> None:
        if self._holds_large_outputs:
            self._holds_large_outputs = False
            _ARENA.shrink()

    def _failure(self, error: Exception, *, stopped: bool) -> Exception:
        if stopped:
            return DeadlineExceeded(f"ran past the {self.limits.deadline_text()} and was stopped")
        refused = _ARENA_REFUSAL.search(str(error)) if self._shrinks else None
        if refused is not None:
            asked = int(refused.group(1))
            return BudgetExceeded(
                f"asked for {asked / MB:.0f} MB at once, more than the {self.limits.memory_text()}"
            )
        if _refuses_inputs(error):
            return InvalidInput(f"the model cannot run on these inputs: {_node_message(error)}")
        return InferenceError(f"ONNX Runtime failed: {without_paths(str(error))}")


def _refuses_inputs(error: Exception) -> bool:
    """Whether ORT failed on what the client sent, not on itself: its inputs passed the
    signature's checks, so an invalid argument or a kernel's shape refusal is theirs."""
    if isinstance(error, InvalidArgument):
        return True
    text = str(error)
    return (
        isinstance(error, Fail | RuntimeException)
        and _NODE_FAILURE.search(text) is not None
        and _SHAPE_REFUSAL.search(text) is not None
    )


def _node_message(error: Exception) -> str:
    """ORT's message as "<op> node: <what it said>", without its source files and C++ signatures."""
    text = str(error).strip()
    node = _NODE_FAILURE.search(text)
    if node is None:
        return without_paths(_ORT_CODE.sub("", text, count=1))
    said = _ENFORCE_PREFIX.sub("", node.group(2).strip(), count=1)
    return f"{node.group(1)} node: {without_paths(said)}"


def _session_options(*, arena: bool) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are noise in Lambda logs
    if arena:
        options.add_session_config_entry("session.use_env_allocators", "1")
    return options


def _run_options(*, shrink: bool) -> ort.RunOptions:
    options = ort.RunOptions()
    options.log_severity_level = 4  # a failed run is raised with its message, and logged once by maas
    if shrink:
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


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
