"""Keras 3 models (`.keras`) and TensorFlow SavedModels, converted to TFLite by TensorFlow's
own TFLiteConverter: float32, or full-integer int8 (weights, activations, inputs and outputs)
calibrated on the rows of a calibration file, whose scale and zero point maas's TFLite runtime
applies so that clients still send and receive real values.

Keras to ONNX is refused: that path goes through tf2onnx (what Keras' `export(format="onnx")`
calls on the TensorFlow backend), a separate project whose releases trail TensorFlow's and which
maas[convert] does not hold, so no test here vouches for it; TFLiteConverter is TensorFlow's own,
released with it.
"""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.convert.exceptions import UnsupportedSource
from maas.convert.samples import InputSpec
from maas.convert.source import ConversionOptions, SourceModel, package_version, require

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CALIBRATION_ROWS = 500
_NO_ONNX = (
    "Keras and TensorFlow models convert to .tflite (TFLiteConverter, released with TensorFlow, and "
    "maas's TFLite runtime); the ONNX path goes through tf2onnx, a separate converter whose releases "
    "trail TensorFlow's and which maas does not install or test, so it is not sound today. "
    "Write -o MODEL.tflite"
)


def refuse_before_tensorflow(source: Path, target: Path) -> None:
    """What can be refused without loading TensorFlow (seconds): an ONNX target, a `.keras`
    file that is no zip archive. Raises UnsupportedSource."""
    if target.suffix == ".onnx":
        raise UnsupportedSource(_NO_ONNX)
    if source.suffix.lower() == ".keras" and not zipfile.is_zipfile(source):
        raise UnsupportedSource(
            f"Keras cannot load '{source.name}': a .keras file is a zip archive, this one is not"
        )


def _tensorflow() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    return require("tensorflow")


class KerasSource(SourceModel):
    framework = "keras"
    targets = (".tflite",)

    def __init__(self, name: str, model: Any) -> None:
        super().__init__(name)
        self.model = model

    @classmethod
    def from_file(cls, path: Path) -> KerasSource:
        """A `.keras` file, loaded in Keras' safe mode (no Python lambdas are deserialized)."""
        _tensorflow()
        keras = require("keras")
        try:
            model = keras.models.load_model(path, compile=False, safe_mode=True)
        except Exception as error:  # Keras raises ValueError, OSError, zipfile errors...
            raise UnsupportedSource(f"Keras cannot load '{path.name}': {error}") from None
        return cls(path.name, model)

    def describe(self) -> str:
        return f"{type(self.model).__name__} '{self.model.name}' ({self.model.count_params():,} parameters)"

    def versions(self) -> dict[str, str]:
        return {"keras": package_version("keras"), "tensorflow": package_version("tensorflow-cpu")}

    def input_specs(self, sample: dict[str, np.ndarray] | None) -> list[InputSpec]:
        return [
            InputSpec(
                tensor.name, np.dtype(tensor.dtype), tuple(-1 if d is None else int(d) for d in tensor.shape)
            )
            for tensor in self.model.inputs
        ]

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = list(inputs.values())
        answer = self.model(arrays[0] if len(arrays) == 1 else arrays, training=False)
        return _named(answer)

    def convert(self, target: Path, specs: list[InputSpec], options: ConversionOptions) -> None:
        if target.suffix == ".onnx":
            raise UnsupportedSource(_NO_ONNX)
        tf = _tensorflow()
        converter = tf.lite.TFLiteConverter.from_keras_model(self.model)
        target.write_bytes(_convert(converter, specs, options, self))


class SavedModelSource(SourceModel):
    framework = "tensorflow"
    targets = (".tflite",)

    def __init__(self, path: Path) -> None:
        super().__init__(path.name)
        tf = _tensorflow()
        self.path = path
        try:
            self.loaded = tf.saved_model.load(str(path))
        except Exception as error:
            raise UnsupportedSource(f"TensorFlow cannot load the SavedModel '{path.name}': {error}") from None
        signatures = dict(self.loaded.signatures)
        if not signatures:
            raise UnsupportedSource(f"the SavedModel '{path.name}' has no signature to serve")
        self.signature_key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        self.function = signatures[self.signature_key]

    def describe(self) -> str:
        return f"SavedModel (signature '{self.signature_key}')"

    def versions(self) -> dict[str, str]:
        return {"tensorflow": package_version("tensorflow-cpu")}

    def input_specs(self, sample: dict[str, np.ndarray] | None) -> list[InputSpec]:
        _, named = self.function.structured_input_signature
        return [
            InputSpec(
                name,
                np.dtype(spec.dtype.as_numpy_dtype),
                tuple(-1 if d is None else int(d) for d in spec.shape),
            )
            for name, spec in named.items()
        ]

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = _tensorflow()
        return _named(self.function(**{name: tf.constant(array) for name, array in inputs.items()}))

    def convert(self, target: Path, specs: list[InputSpec], options: ConversionOptions) -> None:
        if target.suffix == ".onnx":
            raise UnsupportedSource(_NO_ONNX)
        tf = _tensorflow()
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(self.path), signature_keys=[self.signature_key]
        )
        target.write_bytes(_convert(converter, specs, options, self))


def _convert(
    converter: Any, specs: list[InputSpec], options: ConversionOptions, source: SourceModel
) -> bytes:
    tf = _tensorflow()
    if options.calibration is not None:
        calibration = options.calibration
        missing = [spec.name for spec in specs if spec.name not in calibration]
        if missing and not (len(specs) == 1 and len(calibration) == 1):
            raise UnsupportedSource(f"the calibration file lacks input(s) {', '.join(missing)} of the model")
        arrays = [calibration.get(spec.name, next(iter(calibration.values()))) for spec in specs]

        def representative() -> Iterator[list[Any]]:
            rows = min(len(array) for array in arrays)
            for row in range(min(rows, CALIBRATION_ROWS)):
                yield [
                    array[row : row + 1].astype(spec.dtype) for array, spec in zip(arrays, specs, strict=True)
                ]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        # Keras prints where it saved the intermediate SavedModel: not for our users.
        with contextlib.redirect_stdout(io.StringIO()):
            return bytes(converter.convert())
    except Exception as error:  # the MLIR converter raises ConverterError and others
        raise UnsupportedSource(f"TFLiteConverter cannot convert {source.describe()}: {error}") from error


def _named(answer: Any) -> dict[str, np.ndarray]:
    """A model's answer by output name: a dict's keys, else `output_0`, `output_1`... as
    TFLiteConverter names a Keras model's outputs."""
    if isinstance(answer, dict):
        return {name: np.asarray(value) for name, value in answer.items()}
    if isinstance(answer, list | tuple):
        return {f"output_{i}": np.asarray(value) for i, value in enumerate(answer)}
    return {"output_0": np.asarray(answer)}
