"""XGBoost and LightGBM models, converted by onnxmltools.

From their own files (XGBoost's `.json`/`.ubj`, LightGBM's text `.txt`), or scikit-learn-API
models from a pickle (only with --trust-pickle). They take `input` FP32 [N, features];
classifiers answer `label` and `probabilities`, regressors `variable`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.convert.exceptions import UnsupportedSource
from maas.convert.samples import InputSpec
from maas.convert.source import ConversionOptions, SourceModel, package_version, require

if TYPE_CHECKING:
    from pathlib import Path

# The highest opset onnxmltools' tree converters write.
OPSET = 15


class XGBoostSource(SourceModel):
    framework = "xgboost"

    def __init__(self, name: str, model: Any) -> None:
        super().__init__(name)
        self.model = model  # an XGBClassifier or XGBRegressor

    @classmethod
    def from_file(cls, path: Path) -> XGBoostSource:
        """An XGBoost model saved with `save_model` (JSON or UBJSON)."""
        xgb = require("xgboost")
        booster = xgb.Booster()
        try:
            booster.load_model(str(path))
        except xgb.core.XGBoostError as error:
            raise UnsupportedSource(
                f"'{path.name}' is not an XGBoost model: {str(error).splitlines()[0]}"
            ) from None
        objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
        if objective.startswith(("binary:", "multi:")):
            model = xgb.XGBClassifier()
        elif objective.startswith(("reg:", "count:")):
            model = xgb.XGBRegressor()
        else:
            raise UnsupportedSource(
                f"'{path.name}' is an XGBoost model with objective '{objective}': maas converts "
                "classifiers (binary:, multi:) and regressors (reg:, count:)"
            )
        model.load_model(str(path))
        return cls(path.name, model)

    def describe(self) -> str:
        return type(self.model).__name__

    def versions(self) -> dict[str, str]:
        import xgboost

        return {"xgboost": xgboost.__version__, "onnxmltools": package_version("onnxmltools")}

    def input_specs(self, sample: dict[str, np.ndarray] | None) -> list[InputSpec]:
        return [InputSpec("input", np.dtype(np.float32), (-1, int(self.model.n_features_in_)))]

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        features = next(iter(inputs.values()))
        if hasattr(self.model, "predict_proba"):
            return {
                "label": self.model.predict(features),
                "probabilities": self.model.predict_proba(features),
            }
        return {"variable": self.model.predict(features)}

    def convert(self, target: Path, specs: list[InputSpec], options: ConversionOptions) -> None:
        require("onnxmltools")
        from onnxmltools import convert_xgboost

        _write(
            target,
            lambda types: convert_xgboost(self.model, initial_types=types, target_opset=OPSET),
            specs,
            self,
        )


class LightGBMSource(SourceModel):
    framework = "lightgbm"

    def __init__(self, name: str, model: Any) -> None:
        super().__init__(name)
        self.model = model  # an LGBMModel, or a Booster read from its text file

    @classmethod
    def from_file(cls, path: Path) -> LightGBMSource:
        """A LightGBM model saved with `save_model` (its text format)."""
        lgb = require("lightgbm")
        try:
            booster = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as error:
            raise UnsupportedSource(f"'{path.name}' is not a LightGBM model: {error}") from None
        return cls(path.name, booster)

    @property
    def _booster(self) -> Any:
        return getattr(self.model, "booster_", self.model)

    def _objective(self) -> str:
        return str(self._booster.dump_model(num_iteration=1).get("objective", "")).split()[0]

    def describe(self) -> str:
        if type(self.model).__name__ == "Booster":
            return f"Booster ({self._objective()})"
        return type(self.model).__name__

    def versions(self) -> dict[str, str]:
        return {"lightgbm": package_version("lightgbm"), "onnxmltools": package_version("onnxmltools")}

    def input_specs(self, sample: dict[str, np.ndarray] | None) -> list[InputSpec]:
        return [InputSpec("input", np.dtype(np.float32), (-1, int(self._booster.num_feature())))]

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        features = next(iter(inputs.values()))
        if hasattr(self.model, "predict_proba"):  # the scikit-learn API
            return {
                "label": self.model.predict(features),
                "probabilities": self.model.predict_proba(features),
            }
        if hasattr(self.model, "predict") and hasattr(self.model, "booster_"):
            return {"variable": self.model.predict(features)}
        objective = self._objective()
        answer = np.asarray(self.model.predict(features))
        if objective == "binary":
            probabilities = np.stack([1 - answer, answer], axis=1)
            return {"label": (answer > 0.5).astype(np.int64), "probabilities": probabilities}
        if objective in ("multiclass", "multiclassova"):
            return {"label": answer.argmax(axis=1).astype(np.int64), "probabilities": answer}
        return {"variable": answer}

    def convert(self, target: Path, specs: list[InputSpec], options: ConversionOptions) -> None:
        require("onnxmltools")
        from onnxmltools import convert_lightgbm

        def converted(types: list[Any]) -> Any:
            return convert_lightgbm(self.model, initial_types=types, zipmap=False, target_opset=OPSET)

        _write(target, converted, specs, self)


def _write(target: Path, convert: Any, specs: list[InputSpec], source: SourceModel) -> None:
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [(spec.name, FloatTensorType([None, *spec.shape[1:]])) for spec in specs]
    try:
        onnx_model = convert(types)
    except Exception as error:  # onnxmltools raises untyped errors for what it cannot convert
        raise UnsupportedSource(f"onnxmltools cannot convert {source.describe()}: {error}") from error
    _dynamic_rows(onnx_model)
    target.write_bytes(onnx_model.SerializeToString())


def _dynamic_rows(onnx_model: Any) -> None:
    """onnxmltools declares LightGBM's `label` as [1] though it has one value per row: declare
    the rows dynamic, as every other output has them, so the served metadata is right."""
    for output in onnx_model.graph.output:
        dims = output.type.tensor_type.shape.dim
        if len(dims) == 1 and dims[0].HasField("dim_value") and dims[0].dim_value == 1:
            dims[0].dim_param = "N"
