"""The one interface every model runtime implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from maas.errors import ArtifactError
from maas.runtimes.budget import MB, NO_LIMITS, Limits

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
    from several threads at once, and keep within `limits` (raising BudgetExceeded or
    DeadlineExceeded) where their framework lets them.
    """

    # The platform name OIP model metadata reports, as Triton names it.
    platform: ClassVar[str]
    signature: Signature
    limits: Limits = NO_LIMITS
    # What the loaded model holds in memory, as the cache counts it (its file's size).
    memory_bytes: int = 0

    @classmethod
    @abstractmethod
    def load(cls, path: Path, limits: Limits = NO_LIMITS) -> Runtime:
        """Load the model file at `path` to predict within `limits`; raises ArtifactError if it
        cannot be loaded, or if it is larger than `limits.model_bytes`."""

    @abstractmethod
    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model; raises InferenceError if the runtime fails."""

    def predict_served(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str | None]:
        """`predict`, and the version that computed the outputs where a remote server may answer
        with another than the one asked for (a SageMaker variant); None: the one loaded here."""
        return self.predict(inputs), None

    def release(self) -> None:
        """Give back memory the last prediction left in the runtime, once its outputs are no
        longer referenced (an allocator's cached blocks). Nothing to do by default."""
        return

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


def model_file_size(path: Path, limits: Limits) -> int:
    """The size of the model file at `path`; raises ArtifactError, before anything reads it,
    if it is larger than `limits.model_bytes` (what the function can hold)."""
    try:
        size = path.stat().st_size
    except OSError:
        raise ArtifactError(f"model file '{path.name}' cannot be read") from None
    if limits.model_bytes is not None and size > limits.model_bytes:
        raise ArtifactError(
            f"'{path.name}' is {size / MB:.1f} MB, more than the {limits.model_bytes / MB:g} MB "
            "this function keeps for models (MAAS_CACHE_MEMORY_MB)"
        )
    return size
