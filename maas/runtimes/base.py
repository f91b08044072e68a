"""The one interface every model runtime implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import numpy as np

    from maas.protocol.datatypes import Datatype


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model; -1 in `shape` marks a dynamic dimension."""

    name: str
    datatype: Datatype
    shape: tuple[int, ...]

    def accepts_shape(self, shape: tuple[int, ...] | list[int]) -> bool:
        return len(shape) == len(self.shape) and all(
            want in (-1, got) for want, got in zip(self.shape, shape, strict=True)
        )


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)

    def output(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.outputs if spec.name == name), None)


class Runtime(ABC):
    """A loaded model: its signature, and prediction on named arrays.

    `predict` receives arrays already checked against `signature` (names, datatypes,
    shapes) and returns every output by name. Implementations must be safe to call
    from several threads at once.
    """

    # The platform name OIP model metadata reports, as Triton names it.
    platform: ClassVar[str]
    signature: Signature

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> Runtime:
        """Load the model file at `path`; raises ArtifactError if it cannot be loaded."""

    @abstractmethod
    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model; raises InferenceError if the runtime fails."""

    def predict_served(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str | None]:
        """`predict`, and the version that computed the outputs where a remote server may answer
        with another than the one asked for (a SageMaker variant); None: the one loaded here."""
        return self.predict(inputs), None

    def warm(self) -> None:
        """One prediction on zeros (dynamic dimensions as 1), so that the first real request
        does not pay for the runtime's lazy initialization (memory arenas, kernel selection)."""
        import numpy as np

        from maas.protocol.datatypes import NUMPY_DTYPES, Datatype

        inputs = {}
        for spec in self.signature.inputs:
            shape = tuple(1 if dim < 0 else dim for dim in spec.shape)
            dtype = NUMPY_DTYPES[spec.datatype]
            inputs[spec.name] = (
                np.full(shape, b"", dtype=object)
                if spec.datatype is Datatype.BYTES
                else np.zeros(shape, dtype)
            )
        self.predict(inputs)
