"""A trained model in its framework's own saved form, as `maas convert` sees it: what it takes,
what it answers (the framework's own prediction), and how its framework's converter writes it
as ONNX or TFLite. One subclass per framework, in its own module, importing it lazily."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from maas.convert.exceptions import UnsupportedSource

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from maas.convert.samples import InputSpec


@dataclass(frozen=True)
class ConversionOptions:
    """What the user may choose about a conversion beyond its target file."""

    calibration: dict[str, np.ndarray] | None = None  # rows for full-integer int8 (TFLite)
    converter_options: dict[str, Any] = field(default_factory=dict)  # passed to skl2onnx

    @property
    def int8(self) -> bool:
        return self.calibration is not None


class SourceModel(ABC):
    """A loaded source model. `framework` names it in reports and registry labels."""

    framework: ClassVar[str]
    # The suffixes its conversions can write, the first one recommended.
    targets: ClassVar[tuple[str, ...]] = (".onnx",)

    def __init__(self, name: str) -> None:
        self.name = name  # the file or module:factory it came from, for messages

    @abstractmethod
    def describe(self) -> str:
        """What the model is, like 'Pipeline(ColumnTransformer, LogisticRegression)'."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """The framework's version and the converter's, by package name."""

    @abstractmethod
    def input_specs(self, sample: dict[str, np.ndarray] | None) -> list[InputSpec]:
        """The inputs of the converted model, from the model itself or, where it cannot say
        (the column types of a scikit-learn pipeline), from the sample's arrays."""

    @abstractmethod
    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The framework's own answers to `inputs`, by the converted model's output names
        where the framework has them."""

    @abstractmethod
    def convert(self, target: Path, specs: list[InputSpec], options: ConversionOptions) -> None:
        """Write the converted model to `target` (its suffix chooses the format)."""

    def refuse_target(self, target: Path) -> None:
        """Raises UnsupportedSource if this source cannot be written as `target`'s format."""
        if target.suffix not in self.targets:
            raise UnsupportedSource(
                f"{self.framework} models convert to {' or '.join(self.targets)}, not '{target.suffix}'"
            )


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def require(module: str, extra_hint: str = "pip install 'maas[convert]'") -> Any:
    """Import a converter's framework, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise UnsupportedSource(f"converting this model needs {error.name}: {extra_hint}") from None
