"""scikit-learn estimators and pipelines, converted by skl2onnx.

A model fitted on one numeric matrix takes one input, `input` FP32 [N, n_features_in_]. A
pipeline whose columns have several types (a categorical string column beside numbers, as a
ColumnTransformer takes them) gets one input per array of the sample file, in the file's
order: the arrays the pipeline was fitted on, side by side, as columns 0, 1, 2...
Classifiers answer `label` and `probabilities` tensors (no ZipMap), regressors and
transformers `variable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from maas.convert.exceptions import UnsupportedSource
from maas.convert.samples import InputSpec
from maas.convert.source import ConversionOptions, SourceModel, package_version, require

if TYPE_CHECKING:
    from pathlib import Path

OPSET = {"": 17, "ai.onnx.ml": 3}


class ScikitSource(SourceModel):
    framework = "scikit-learn"

    def __init__(self, name: str, model: Any) -> None:
        super().__init__(name)
        self.model = model

    def describe(self) -> str:
        steps = getattr(self.model, "steps", None)
        if steps:
            return f"Pipeline({', '.join(type(step).__name__ for _, step in steps)})"
        return type(self.model).__name__

    def versions(self) -> dict[str, str]:
        return {"scikit-learn": package_version("scikit-learn"), "skl2onnx": package_version("skl2onnx")}

    def input_specs(self, sample: dict[str, np.ndarray] | None) -> list[InputSpec]:
        if sample is not None:
            return [
                InputSpec(name, _served_dtype(array), (-1, *(array.shape[1:] if array.ndim > 1 else (1,))))
                for name, array in sample.items()
            ]
        features = getattr(self.model, "n_features_in_", None)
        if features is None:
            raise UnsupportedSource(
                f"{self.describe()} does not say how many features it takes: give rows with --sample FILE"
            )
        return [InputSpec("input", np.dtype(np.float32), (-1, int(features)))]

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        columns = [array if array.ndim > 1 else array[:, None] for array in inputs.values()]
        mixed = any(column.dtype.kind in "OSU" for column in columns)
        features = np.hstack([column.astype(object) for column in columns]) if mixed else np.hstack(columns)
        final = _final_step(self.model)
        if _is_classifier(final):
            outputs = {"label": np.asarray(self.model.predict(features))}
            if hasattr(self.model, "predict_proba"):
                outputs["probabilities"] = np.asarray(self.model.predict_proba(features))
            return outputs
        if hasattr(self.model, "predict"):
            return {"variable": np.asarray(self.model.predict(features))}
        return {"variable": np.asarray(self.model.transform(features))}

    def convert(self, target: Path, specs: list[InputSpec], options: ConversionOptions) -> None:
        require("skl2onnx")
        from skl2onnx import convert_sklearn

        final = _final_step(self.model)
        estimator_options = dict(options.converter_options)
        if _is_classifier(final):
            # Plain tensors, not a sequence of maps: OIP carries tensors.
            estimator_options = {"zipmap": False, **estimator_options}
        try:
            onnx_model = convert_sklearn(
                self.model,
                initial_types=[(spec.name, _tensor_type(spec)) for spec in specs],
                options={id(final): estimator_options} if estimator_options else None,
                target_opset=OPSET,
            )
        except Exception as error:  # skl2onnx raises untyped errors for what it cannot convert
            raise UnsupportedSource(f"skl2onnx cannot convert {self.describe()}: {error}") from error
        target.write_bytes(onnx_model.SerializeToString())


def _final_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return _final_step(steps[-1][1]) if steps else model


def _is_classifier(model: Any) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(model))


def _served_dtype(array: np.ndarray) -> np.dtype:
    """What an input of the converted model holds: FP32 for reals (as maas serves them), INT64
    for integers, strings for text."""
    if array.dtype.kind in "OSU":
        return np.dtype(str)
    if array.dtype.kind in "iu":
        return np.dtype(np.int64)
    if array.dtype.kind == "b":
        return np.dtype(bool)
    return np.dtype(np.float32)


def _tensor_type(spec: InputSpec) -> Any:
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    kinds = {"f": FloatTensorType, "i": Int64TensorType, "u": Int64TensorType, "b": BooleanTensorType}
    kind = StringTensorType if spec.dtype.kind in "OSU" else kinds[spec.dtype.kind]
    return kind([None, *spec.shape[1:]])
