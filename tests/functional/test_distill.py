"""`maas distill`: a small student of a large teacher, trained on its answers to unlabeled rows,
standing in for it (same names, types, dynamic batch), gated like `maas optimize`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from maas.cli import main
from maas.distill import distill_model
from maas.errors import InvalidInput, QualityGateFailed
from maas.local.demo import digits_split
from maas.runtimes import load_runtime
from tests import fakes


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A float MLP of the digits (two hidden layers of 128), unlabeled training rows, and
    held-out rows with their labels."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = tmp_path_factory.mktemp("distill")
    train_x, test_x, train_y, test_y = digits_split()
    model = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(128, 128), max_iter=100, random_state=0)
    ).fit(train_x, train_y)
    onnx_model = to_onnx(
        model, train_x[:1], options={"zipmap": False}, target_opset={"": 17, "ai.onnx.ml": 3}
    )
    (root / "teacher.onnx").write_bytes(onnx_model.SerializeToString())
    np.savez(root / "unlabeled.npz", X=train_x)
    np.savez(root / "eval.npz", X=test_x, labels=test_y)
    return {"model": root / "teacher.onnx", "data": root / "unlabeled.npz", "eval": root / "eval.npz"}


def test_an_mlp_student_stands_in_for_its_teacher(teacher: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "student.onnx"
    report = distill_model(
        teacher["model"], output, data=teacher["data"], evaluation=teacher["eval"], widths=(32,), epochs=30
    )
    assert output.is_file()
    assert report.student_size < 0.25 * report.teacher_size
    assert report.quality_drop <= 1.0 and report.metric == "accuracy"
    assert report.agreement >= 95
    taught, student = load_runtime(teacher["model"]), load_runtime(output)
    assert student.signature == taught.signature  # same names, datatypes and dynamic batch
    with np.load(teacher["eval"]) as data:
        labels = student.predict({"X": data["X"]})["label"]
        assert float((labels == data["labels"]).mean() * 100) == pytest.approx(report.student_quality)
        assert student.predict({"X": data["X"][:1]})["probabilities"].shape == (1, 10)
    assert "agreement (%)" in report.table() and "size (bytes)" in report.table()


def test_unlabeled_rows_are_gated_on_agreement(teacher: dict[str, Path], tmp_path: Path) -> None:
    report = distill_model(
        teacher["model"], tmp_path / "s.onnx", data=teacher["data"], widths=(32,), epochs=30, max_drop=5
    )
    assert report.metric == "" and report.rows_scored == len(np.load(teacher["data"])["X"]) // 5
    assert report.agreement_drop <= 5


def test_a_gradient_boosted_student(teacher: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "gbm.onnx"
    report = distill_model(
        teacher["model"], output, data=teacher["data"], evaluation=teacher["eval"], student="gbm", max_drop=3
    )
    assert report.quality_drop <= 3
    signature = load_runtime(output).signature
    assert [(s.name, s.datatype, s.shape) for s in signature.outputs] == [
        (s.name, s.datatype, s.shape) for s in load_runtime(teacher["model"]).signature.outputs
    ]


def test_a_student_that_falls_short_is_not_written(teacher: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "tiny.onnx"
    with pytest.raises(
        QualityGateFailed, match=r"accuracy 9\d\.\d+ -> \d+\.\d+ .*nothing was written"
    ) as refused:
        distill_model(
            teacher["model"], output, data=teacher["data"], evaluation=teacher["eval"], widths=(1,), epochs=1
        )
    assert "teacher  student" in refused.value.message  # both, side by side
    assert not output.exists()


def test_a_quantized_student_from_the_command_line(
    teacher: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "student-int8.onnx"
    code = main(
        ["distill", str(teacher["model"]), "-o", str(output), "--data", str(teacher["data"]), "--eval", str(teacher["eval"]),
         "--widths", "64", "--epochs", "30", "--quantize", "int8-dynamic", "--max-drop", "2"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "student: mlp 64 (30 epochs), int8-dynamic" in out and output.is_file()


def test_a_tflite_teacher(tmp_path: Path) -> None:
    """The demo's int8 TFLite model teaches an ONNX student."""
    source = resources.files("maas.local") / "assets" / "digits-int8.tflite"
    with resources.as_file(source) as tflite:
        train_x, test_x, _, test_y = digits_split()
        np.savez(tmp_path / "rows.npz", input=train_x)
        np.savez(tmp_path / "eval.npz", input=test_x, labels=test_y)
        report = distill_model(tflite, tmp_path / "s.onnx", data=tmp_path / "rows.npz", evaluation=tmp_path / "eval.npz",
                               widths=(32,), epochs=30, max_drop=2)  # fmt: skip
    assert report.classifier and report.quality_drop <= 2


def test_a_regressor_teacher(tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_diabetes
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, targets = load_diabetes(return_X_y=True)
    features = features.astype(np.float32)
    model = make_pipeline(
        StandardScaler(), MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=300, random_state=0)
    ).fit(features, targets)
    (tmp_path / "regressor.onnx").write_bytes(to_onnx(model, features[:1]).SerializeToString())
    np.savez(tmp_path / "rows.npz", X=features, targets=targets)
    report = distill_model(
        tmp_path / "regressor.onnx",
        tmp_path / "s.onnx",
        data=tmp_path / "rows.npz",
        widths=(16,),
        epochs=80,
        max_drop=10,
    )
    assert not report.classifier and report.metric == "rmse"
    assert report.quality_drop <= 10
    assert load_runtime(tmp_path / "s.onnx").signature == load_runtime(tmp_path / "regressor.onnx").signature


def test_unusable_teachers_and_data_are_refused(teacher: dict[str, Path], tmp_path: Path) -> None:
    fakes.sum_model(tmp_path / "sum.onnx")
    with pytest.raises(InvalidInput, match=r"one input of rows of features \[N, F\]"):
        distill_model(tmp_path / "sum.onnx", tmp_path / "s.onnx", data=teacher["data"])
    with pytest.raises(InvalidInput, match=r"must end in \.onnx"):
        distill_model(teacher["model"], tmp_path / "s.tflite", data=teacher["data"])
    np.savez(tmp_path / "few.npz", X=np.zeros((5, 64), np.float32))
    with pytest.raises(InvalidInput, match="at least 20 rows"):
        distill_model(teacher["model"], tmp_path / "s.onnx", data=tmp_path / "few.npz")
    np.savez(
        tmp_path / "other.npz", pixels=np.zeros((50, 64), np.float32), more=np.zeros((50, 64), np.float32)
    )
    with pytest.raises(InvalidInput, match="lacks the teacher's input 'X'"):
        distill_model(teacher["model"], tmp_path / "s.onnx", data=tmp_path / "other.npz")
    np.savez(tmp_path / "narrow.npz", X=np.zeros((50, 3), np.float32))
    with pytest.raises(InvalidInput, match="has 3 features per row, the teacher takes 64"):
        distill_model(teacher["model"], tmp_path / "s.onnx", data=tmp_path / "narrow.npz")
    nan = np.zeros((50, 64), np.float32)
    nan[3, 3] = np.nan
    np.savez(tmp_path / "nan.npz", X=nan)
    with pytest.raises(InvalidInput, match="NaN"):
        distill_model(teacher["model"], tmp_path / "s.onnx", data=tmp_path / "nan.npz")
    with pytest.raises(InvalidInput, match="student 'forest'"):
        distill_model(teacher["model"], tmp_path / "s.onnx", data=teacher["data"], student="forest")
    assert not (tmp_path / "s.onnx").exists()
