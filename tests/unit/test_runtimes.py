"""The runtimes: load a file, report its signature, predict on named arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maas.errors import ArtifactError
from maas.protocol import Datatype
from maas.runtimes import framework_of, load_runtime
from maas.runtimes.tflite import interpreter_class


def test_the_runtime_is_chosen_by_file_suffix() -> None:
    assert framework_of(Path("m/model.onnx")) == "onnx"
    assert framework_of(Path("m/model.tflite")) == "tflite"
    with pytest.raises(
        ArtifactError,
        match=r"'model.pt' is not a model file maas can serve \(expected .onnx, .ort, .tflite\)",
    ):
        framework_of(Path("model.pt"))


def test_onnx_reports_names_datatypes_and_dynamic_dimensions(model_dir: Path) -> None:
    runtime = load_runtime(model_dir / "digits" / "1" / "model.onnx")
    assert runtime.platform == "onnxruntime_onnx"
    assert [(s.name, s.datatype, s.shape) for s in runtime.signature.inputs] == [
        ("input", Datatype.FP32, (-1, 64))
    ]
    assert {(s.name, s.datatype, s.shape) for s in runtime.signature.outputs} == {
        ("label", Datatype.INT64, (-1,)),
        ("probabilities", Datatype.FP32, (-1, 10)),
    }


def test_tflite_int8_model_presents_real_valued_inputs_and_outputs(model_dir: Path) -> None:
    runtime = load_runtime(model_dir / "digits-tflite" / "1" / "model.tflite")
    assert runtime.platform == "tensorflow_lite"
    assert [(s.name, s.datatype, s.shape) for s in runtime.signature.inputs] == [
        ("input", Datatype.FP32, (-1, 64))
    ]
    outputs = {s.name: (s.datatype, s.shape) for s in runtime.signature.outputs}
    assert outputs == {"probabilities": (Datatype.FP32, (-1, 10)), "label": (Datatype.INT64, (-1,))}


@pytest.mark.parametrize("path", ["digits/1/model.onnx", "digits-tflite/1/model.tflite"])
def test_both_runtimes_classify_held_out_digits(model_dir: Path, digits_test_rows: tuple, path: str) -> None:
    features, labels = digits_test_rows
    runtime = load_runtime(model_dir / path)
    outputs = runtime.predict({"input": features})
    assert outputs["probabilities"].dtype == np.float32
    assert outputs["probabilities"].shape == (len(labels), 10)
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, atol=0.05)
    assert (outputs["label"] == labels).mean() > 0.9


def test_tflite_resizes_between_batch_sizes(model_dir: Path, digits_test_rows: tuple) -> None:
    features, labels = digits_test_rows
    runtime = load_runtime(model_dir / "digits-tflite" / "1" / "model.tflite")
    for size in (1, 7, 1, 450):
        predicted = runtime.predict({"input": features[:size]})["label"]
        assert predicted.shape == (size,)
        assert (predicted == labels[:size]).mean() > 0.8


def test_the_installed_tflite_interpreter_is_found() -> None:
    assert interpreter_class().__module__.split(".")[0] in ("tflite_runtime", "ai_edge_litert")


@pytest.mark.parametrize("suffix", [".onnx", ".tflite"])
def test_a_file_that_does_not_load_is_an_artifact_error_with_the_runtime_message(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match=f"cannot load 'model{suffix}'"):
        load_runtime(path)
