"""`maas convert` of deep-learning models: Keras to TFLite (float and full-integer int8) and
PyTorch through torch.export to ONNX with a dynamic batch, each answering as its framework does."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from maas.convert import INT8_TOLERANCE, ConversionReport, UnsupportedSource, convert_model
from maas.runtimes import load_runtime
from tests import convert_models


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory: pytest.TempPathFactory) -> convert_models.Built:
    return convert_models.keras_classifier(tmp_path_factory.mktemp("keras"))


@pytest.fixture(scope="module")
def float_tflite(
    keras_model: convert_models.Built, tmp_path_factory: pytest.TempPathFactory
) -> ConversionReport:
    return convert_model(
        keras_model.source, tmp_path_factory.mktemp("tflite") / "digits.tflite", sample=keras_model.sample
    )


@pytest.fixture(scope="module")
def torch_model(tmp_path_factory: pytest.TempPathFactory) -> convert_models.Built:
    return convert_models.torch_mlp(tmp_path_factory.mktemp("torch"))


def test_keras_to_float_tflite_answers_as_keras(
    keras_model: convert_models.Built, float_tflite: ConversionReport
) -> None:
    report, output = float_tflite, float_tflite.output
    assert report.agrees and not report.int8
    with np.load(keras_model.sample) as rows:
        served = load_runtime(output).predict({"pixels": rows["pixels"]})
    np.testing.assert_allclose(served["output_0"], keras_model.expected["output_0"], atol=1e-4)
    assert [(s.name, s.datatype, s.shape) for s in report.signature.inputs] == [("pixels", "FP32", (-1, 64))]
    assert "tensorflow" not in sys.modules  # converted in a process of its own


def test_keras_to_int8_tflite_is_smaller_and_keeps_its_answers(
    keras_model: convert_models.Built, float_tflite: ConversionReport, tmp_path: Path
) -> None:
    calibration = keras_model.source.parent / "keras-calibration.npz"
    float_report = float_tflite
    report = convert_model(
        keras_model.source, tmp_path / "int8.tflite", sample=keras_model.sample, calibration=calibration
    )
    assert report.int8 and report.tolerance == INT8_TOLERANCE
    assert report.converted_size < float_report.converted_size / 2
    with np.load(keras_model.sample) as rows:
        served = load_runtime(tmp_path / "int8.tflite").predict({"pixels": rows["pixels"]})["output_0"]
    expected = keras_model.expected["output_0"]
    assert np.abs(served - expected).max() <= INT8_TOLERANCE
    assert (served.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.97


def test_a_savedmodel_to_tflite_answers_as_keras(keras_model: convert_models.Built, tmp_path: Path) -> None:
    output = tmp_path / "saved.tflite"
    report = convert_model(keras_model.source.parent / "digits-savedmodel", output, sample=keras_model.sample)
    assert report.framework == "tensorflow" and report.agrees
    with np.load(keras_model.sample) as rows:
        served = load_runtime(output).predict({"pixels": rows["pixels"]})
    np.testing.assert_allclose(served["output_0"], keras_model.expected["output_0"], atol=1e-4)


def test_keras_to_onnx_is_refused_saying_why(keras_model: convert_models.Built, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedSource, match=r"convert to \.tflite .*not sound today"):
        convert_model(keras_model.source, tmp_path / "digits.onnx")


def test_a_damaged_keras_file_is_refused(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(
        UnsupportedSource, match=r"Keras cannot load 'damaged\.keras': a \.keras file is a zip"
    ):
        convert_model(damaged, tmp_path / "out.tflite")


def test_an_exported_program_converts_with_a_dynamic_batch(
    torch_model: convert_models.Built, tmp_path: Path
) -> None:
    output = tmp_path / "mlp.onnx"
    report = convert_model(torch_model.source, output, sample=torch_model.sample)
    assert [(s.name, s.shape) for s in report.signature.inputs] == [("input", (-1, 64))]
    runtime = load_runtime(output)
    with np.load(torch_model.sample) as rows:
        for batch in (1, 7, 50):
            served = runtime.predict({"input": rows["input"][:batch]})["output"]
            np.testing.assert_allclose(served, torch_model.expected["output"][:batch], atol=1e-5)


def test_a_module_factory_converts_from_an_example_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_models.py").write_text(
        textwrap.dedent(
            """
            import torch

            class Scorer(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.hidden = torch.nn.Linear(8, 16)
                    self.out = torch.nn.Linear(16, 1)

                def forward(self, features):
                    return torch.sigmoid(self.out(torch.tanh(self.hidden(features))))

            def make():
                torch.manual_seed(0)
                return Scorer()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    report = convert_model("my_models:make", tmp_path / "scorer.onnx", input_shape=(1, 8))
    assert report.agrees
    assert [(s.name, s.shape) for s in report.signature.inputs] == [("features", (-1, 8))]
    assert report.labels()["convert.source"] == "my_models:make"
    with pytest.raises(UnsupportedSource, match="needs an example input"):
        convert_model("my_models:make", tmp_path / "scorer.onnx")
    with pytest.raises(UnsupportedSource, match="cannot import 'my_models:nothing'"):
        convert_model("my_models:nothing", tmp_path / "scorer.onnx", input_shape=(1, 8))
