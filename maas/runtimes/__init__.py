"""Model runtimes behind one interface, chosen by the artifact's file suffix.

Runtime modules are imported only when a model of their kind is loaded, so a
function serving ONNX models never pays for importing TFLite, and vice versa.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from maas.errors import ArtifactError
from maas.runtimes.base import Runtime, Signature, TensorSpec
from maas.runtimes.budget import Limits, loading_limits

if TYPE_CHECKING:
    from pathlib import Path

# Framework name -> (file suffixes, "module:class"). ONNX Runtime also loads its own ORT format.
RUNTIMES: dict[str, tuple[tuple[str, ...], str]] = {
    "onnx": ((".onnx", ".ort"), "maas.runtimes.onnx:OnnxRuntime"),
    "tflite": ((".tflite",), "maas.runtimes.tflite:TfliteRuntime"),
}
SUFFIXES = tuple(suffix for suffixes, _ in RUNTIMES.values() for suffix in suffixes)


def framework_of(path: Path) -> str:
    """The framework whose runtime loads `path`, from its suffix; raises ArtifactError if none does."""
    for framework, (suffixes, _) in RUNTIMES.items():
        if path.suffix in suffixes:
            return framework
    known = ", ".join(SUFFIXES)
    raise ArtifactError(f"'{path.name}' is not a model file maas can serve (expected {known})")


def runtime_target(framework: str) -> str:
    """`module:Class` of the runtime for `framework`, without importing it; ArtifactError if none."""
    try:
        return RUNTIMES[framework][1]
    except KeyError:
        raise ArtifactError(
            f"unknown framework '{framework}', expected one of {', '.join(RUNTIMES)}"
        ) from None


def runtime_class(framework: str) -> type[Runtime]:
    """The Runtime subclass for `framework`, imported on first use."""
    module_name, class_name = runtime_target(framework).split(":")
    cls: type[Runtime] = getattr(importlib.import_module(module_name), class_name)
    return cls


def load_runtime(path: Path, framework: str | None = None, limits: Limits | None = None) -> Runtime:
    """Load the model file at `path` with the runtime of its framework (by suffix if not given),
    to predict within `limits` (by default those of the data plane loading it, if any)."""
    chosen = limits if limits is not None else loading_limits()
    return runtime_class(framework or framework_of(path)).load(path, chosen)


__all__ = [
    "RUNTIMES",
    "SUFFIXES",
    "Limits",
    "Runtime",
    "Signature",
    "TensorSpec",
    "framework_of",
    "load_runtime",
    "runtime_class",
    "runtime_target",
]
