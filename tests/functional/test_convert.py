"""`maas convert`: scikit-learn, XGBoost and LightGBM models to ONNX, each verified against the
framework's own answers, and the refusals: pickles, disagreement, unusable input."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from maas.cli import main
from maas.convert import ConversionMismatch, UnsupportedSource, UntrustedPickle, convert_model
from maas.errors import InvalidInput
from maas.runtimes import load_runtime
from tests import convert_models


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, convert_models.Built]:
    root = tmp_path_factory.mktemp("convert")
    return {
        "pipeline": convert_models.categorical_pipeline(root),
        "xgboost": convert_models.xgboost_classifier(root),
        "lightgbm": convert_models.lightgbm_classifier(root),
    }


def served_answers(path: Path, sample: Path) -> dict[str, np.ndarray]:
    """What maas's runtime answers for the sample rows, text sent as a request sends it."""
    runtime = load_runtime(path)
    with np.load(sample) as arrays:
        inputs = {
            name: np.array([v.encode() for v in arrays[name].ravel()], dtype=object).reshape(
                arrays[name].shape
            )
            if arrays[name].dtype.kind == "U"
            else arrays[name]
            for name in arrays.files
        }
    return runtime.predict(inputs)


@pytest.mark.parametrize("kind", ["pipeline", "xgboost", "lightgbm"])
def test_a_converted_model_answers_as_its_framework_does(
    built: dict[str, convert_models.Built], tmp_path: Path, kind: str
) -> None:
    model = built[kind]
    output = tmp_path / f"{kind}.onnx"
    report = convert_model(model.source, output, sample=model.sample, trust_pickle=True)
    assert report.agrees and output.is_file()
    answers = served_answers(output, model.sample)
    np.testing.assert_array_equal(answers["label"], model.expected["label"])
    np.testing.assert_allclose(answers["probabilities"], model.expected["probabilities"], atol=1e-4)
    # The report names the inputs and outputs, their types and shapes, and both sizes.
    summary = report.summary()
    assert "output     label INT64 [-1]" in summary
    assert (
        "probabilities FP32 [-1, 2]" in summary
        if kind != "pipeline"
        else "probabilities FP32 [-1, 3]" in summary
    )
    assert f"-> {output.stat().st_size:,} bytes" in summary
    assert report.labels()["convert.framework"] == {"pipeline": "scikit-learn"}.get(kind, kind)


def test_a_categorical_column_is_a_text_input(built: dict[str, convert_models.Built], tmp_path: Path) -> None:
    report = convert_model(
        built["pipeline"].source, tmp_path / "p.onnx", sample=built["pipeline"].sample, trust_pickle=True
    )
    inputs = {spec.name: (spec.datatype, spec.shape) for spec in report.signature.inputs}
    assert inputs == {"color": ("BYTES", (-1, 1)), "size": ("FP32", (-1, 1)), "weight": ("FP32", (-1, 1))}
    assert "convert.version.skl2onnx" in report.labels()


def test_rows_are_made_up_when_no_sample_is_given(
    built: dict[str, convert_models.Built], tmp_path: Path
) -> None:
    report = convert_model(built["xgboost"].source, tmp_path / "x.onnx")
    assert report.rows == 64 and report.agrees


def test_rows_that_do_not_fit_the_model_are_refused(
    built: dict[str, convert_models.Built], tmp_path: Path
) -> None:
    sample = tmp_path / "numbers-only.npz"
    with np.load(built["pipeline"].sample) as arrays:
        np.savez(sample, color=arrays["size"], size=arrays["size"], weight=arrays["weight"])
    with pytest.raises(InvalidInput, match="scikit-learn cannot answer the sample rows"):
        convert_model(built["pipeline"].source, tmp_path / "p.onnx", sample=sample, trust_pickle=True)
    assert not (tmp_path / "p.onnx").exists()


def test_text_inputs_need_a_sample(built: dict[str, convert_models.Built], tmp_path: Path) -> None:
    # Made-up rows are numbers: the pipeline's encoder of colors refuses them, and says so.
    with pytest.raises(InvalidInput, match="give rows the model was made for with --sample FILE"):
        convert_model(built["pipeline"].source, tmp_path / "p.onnx", trust_pickle=True)
    assert not (tmp_path / "p.onnx").exists()


def test_a_pickle_is_refused_without_trust_and_never_loaded(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Hostile:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (marker,))  # what a malicious pickle would do instead

    hostile = tmp_path / "model.pkl"
    hostile.write_bytes(pickle.dumps(Hostile()))
    with pytest.raises(UntrustedPickle, match=r"runs any code its author put in it.*--trust-pickle"):
        convert_model(hostile, tmp_path / "out.onnx")
    assert not marker.exists()
    # Trusted, it runs (that is what trust means) and is then refused for what it holds.
    with pytest.raises(UnsupportedSource, match="not a scikit-learn, XGBoost or LightGBM model"):
        convert_model(hostile, tmp_path / "out.onnx", trust_pickle=True)
    assert not (tmp_path / "out.onnx").exists()


def test_a_disagreeing_conversion_writes_nothing_and_exits_2_with_both_answers(
    built: dict[str, convert_models.Built], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "broken.onnx"
    # raw_scores: skl2onnx writes the classifier's scores where its probabilities belong.
    code = main(
        [
            "convert", str(built["pipeline"].source), "-o", str(output), "--sample", str(built["pipeline"].sample),
            "--trust-pickle", "--converter-option", "raw_scores=true",
        ]
    )  # fmt: skip
    error = capsys.readouterr().err
    assert code == 2
    assert not output.exists()
    assert "disagrees with the original on the sample rows; nothing was written" in error
    assert "'probabilities': largest difference" in error
    assert "row 0: original [" in error and ", converted [" in error


def test_the_cli_writes_and_reports(
    built: dict[str, convert_models.Built], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "lgbm.onnx"
    assert main(["convert", str(built["lightgbm"].source), "-o", str(output)]) == 0
    out = capsys.readouterr().out
    assert "source     lightgbm.txt: lightgbm Booster (binary)" in out
    assert f"wrote {output}" in out and output.is_file()


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("model.bin", b"", "maas cannot convert 'model.bin'"),
        ("model.json", b'{"not": "xgboost"}', "is not an XGBoost model"),
        ("model.txt", b"hello", "is not a LightGBM model"),
        ("model.pt", b"", "torch.save pickle"),
    ],
)
def test_files_that_are_no_model_are_refused(tmp_path: Path, name: str, content: bytes, error: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(UnsupportedSource, match=error):
        convert_model(tmp_path / name, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_bad_arguments_are_refused(built: dict[str, convert_models.Built], tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"must end in \.onnx or \.tflite"):
        convert_model(built["xgboost"].source, tmp_path / "out.pb")
    with pytest.raises(UnsupportedSource, match=r"xgboost models convert to \.onnx, not '\.tflite'"):
        convert_model(built["xgboost"].source, tmp_path / "out.tflite")
    with pytest.raises(InvalidInput, match="tolerance"):
        convert_model(built["xgboost"].source, tmp_path / "out.onnx", tolerance=-1)
    with pytest.raises(InvalidInput, match="--input-shape is a PyTorch"):
        convert_model(built["xgboost"].source, tmp_path / "out.onnx", input_shape=(1, 30))
    with pytest.raises(UnsupportedSource, match="no model at"):
        convert_model(tmp_path / "missing.json", tmp_path / "out.onnx")
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, input=np.zeros((5, 3), np.float32))
    with pytest.raises(InvalidInput, match=r"has shape \[5, 3\], the model takes \[N, 30\]"):
        convert_model(built["xgboost"].source, tmp_path / "out.onnx", sample=wrong)


def test_a_tolerance_too_tight_for_float32_is_a_disagreement(
    built: dict[str, convert_models.Built], tmp_path: Path
) -> None:
    with pytest.raises(ConversionMismatch, match="reals within 0"):
        convert_model(
            built["xgboost"].source, tmp_path / "x.onnx", sample=built["xgboost"].sample, tolerance=0
        )
    assert not (tmp_path / "x.onnx").exists()
