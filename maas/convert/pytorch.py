"""PyTorch modules, exported by `torch.export` and converted by its `torch.onnx` exporter
(`dynamo=True`), with the first dimension of every input dynamic (the batch).

From a `.pt2` file (`torch.export.save`: a graph and its weights, no pickled code), or a
`package.module:factory` that returns the module with its weights loaded, plus an example
input (`--input-shape 1,64`, FP32, or `--sample FILE`). Inputs are named as the module's
`forward` names them; outputs `output` (one tensor), `output_0`, `output_1`... (a tuple) or
by key (a dict).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.convert.exceptions import UnsupportedSource
from maas.convert.samples import InputSpec
from maas.convert.source import ConversionOptions, SourceModel, package_version, require

if TYPE_CHECKING:
    from pathlib import Path

OPSET = 18


class TorchSource(SourceModel):
    framework = "pytorch"

    def __init__(self, name: str, module: Any, program: Any = None) -> None:
        super().__init__(name)
        # Inference mode (dropout off, batch norm frozen); an exported program's module already is.
        self.module = module if program is not None else module.eval()
        self.program = program  # a loaded .pt2: converted as it was exported

    @classmethod
    def from_exported(cls, path: Path) -> TorchSource:
        """A program saved with `torch.export.save`."""
        torch = require("torch")
        try:
            program = torch.export.load(str(path))
        except Exception as error:  # a damaged or foreign archive
            raise UnsupportedSource(f"torch.export cannot load '{path.name}': {error}") from None
        return cls(path.name, program.module(), program)

    @classmethod
    def from_factory(cls, spec: str) -> TorchSource:
        """`package.module:factory`: imported (it is the user's own code) from the current
        directory or the Python path, and called."""
        import os
        import sys

        torch = require("torch")
        module_name, _, factory_name = spec.partition(":")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # as `python -m` would find it (uvicorn does the same)
        try:
            factory = getattr(importlib.import_module(module_name), factory_name)
        except (ImportError, AttributeError) as error:
            raise UnsupportedSource(f"cannot import '{spec}': {error}") from None
        module = factory()
        if not isinstance(module, torch.nn.Module):
            raise UnsupportedSource(f"'{spec}' returned a {type(module).__name__}, not a torch.nn.Module")
        return cls(spec, module)

    def describe(self) -> str:
        parameters = sum(p.numel() for p in self.module.parameters())
        return f"{type(self.module).__name__} ({parameters:,} parameters)"

    def versions(self) -> dict[str, str]:
        return {"torch": package_version("torch"), "onnxscript": package_version("onnxscript")}

    def input_specs(self, sample: dict[str, np.ndarray] | None) -> list[InputSpec]:
        names = self._input_names()
        if sample is not None:
            arrays = list(sample.values())
            if len(arrays) != len(names):
                raise UnsupportedSource(
                    f"{self.describe()} takes {len(names)} input(s) ({', '.join(names)}), the sample holds {len(arrays)}"
                )
            return [
                InputSpec(name, _dtype(array.dtype), (-1, *array.shape[1:]))
                for name, array in zip(names, arrays, strict=True)
            ]
        if self.program is not None:
            # As exported: the first dimension is dynamic only if the program was exported so.
            return [
                InputSpec(name, np.dtype(str(value.dtype).removeprefix("torch.")), _dims(value.shape))
                for name, value in zip(names, self._example(), strict=True)
            ]
        raise UnsupportedSource(
            f"'{self.name}' needs an example input: --input-shape 1,64 (FP32) or --sample FILE"
        )

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = require("torch")
        with torch.no_grad():
            answer = self.module(*(torch.from_numpy(np.ascontiguousarray(a)) for a in inputs.values()))
        if isinstance(answer, dict):
            return {name: value.numpy() for name, value in answer.items()}
        if isinstance(answer, list | tuple):
            return {f"output_{i}": value.numpy() for i, value in enumerate(answer)}
        return {"output": answer.numpy()}

    def convert(self, target: Path, specs: list[InputSpec], options: ConversionOptions) -> None:
        torch = require("torch")
        require("onnxscript")
        if self.program is not None:
            self._export(self.program, (), specs, None, target)
            return
        example = tuple(torch.zeros((2, *spec.shape[1:]), dtype=_torch_dtype(spec.dtype)) for spec in specs)
        batch = torch.export.Dim("batch", min=1)
        self._export(self.module, example, specs, tuple({0: batch} for _ in specs), target)

    def _export(
        self, model: Any, example: tuple[Any, ...], specs: list[InputSpec], dynamic: Any, target: Path
    ) -> None:
        torch = require("torch")
        rows = {spec.name: np.zeros((max(spec.shape[0], 1), *spec.shape[1:]), spec.dtype) for spec in specs}
        outputs = self.predict(rows)
        quiet_exporter()
        try:
            program = torch.onnx.export(
                model,
                example,
                input_names=[spec.name for spec in specs],
                output_names=list(outputs),
                dynamic_shapes=dynamic,
                opset_version=OPSET,
                dynamo=True,
                verbose=False,
                report=False,
            )
        except Exception as error:  # torch.export's and the exporter's own errors
            raise UnsupportedSource(f"torch.onnx cannot export {self.describe()}: {error}") from error
        program.save(str(target))

    def _input_names(self) -> list[str]:
        if self.program is not None:
            return list(self.program.graph_signature.user_inputs)
        parameters = inspect.signature(self.module.forward).parameters.values()
        return [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def _example(self) -> list[Any]:
        """The example values an exported program was traced with (fake tensors: shapes, dtypes)."""
        users = set(self.program.graph_signature.user_inputs)
        return [
            node.meta["val"]
            for node in self.program.graph.nodes
            if node.op == "placeholder" and node.name in users
        ]


def quiet_exporter() -> None:
    """The exporter warns of every torchvision operator it could not register, and its optimizer
    logs each pass at INFO: how, not what, and not for our users."""
    for name in ("torch.onnx", "onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.WARNING if name != "torch.onnx" else logging.ERROR)


def _dims(shape: Any) -> tuple[int, ...]:
    """A traced shape, its symbolic (dynamic) sizes as -1."""
    return tuple(int(dim) if isinstance(dim, int) else -1 for dim in shape)


def _dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype.kind == "f" else np.dtype(np.int64) if dtype.kind in "iu" else dtype


def _torch_dtype(dtype: np.dtype) -> Any:
    import torch

    return torch.from_numpy(np.zeros(1, dtype=dtype)).dtype
