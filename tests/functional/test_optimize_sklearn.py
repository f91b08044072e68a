"""`maas optimize` on what skl2onnx makes of scikit-learn models: quantized where ONNX Runtime's
quantizer can rewrite the weights, refused with the reason where it cannot, and never a result
bigger than its input unless asked."""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from maas.cli import main
from maas.errors import InvalidInput
from maas.optimize import LargerThanInput, NotQuantizable, optimize_model
from maas.runtimes import load_runtime

if TYPE_CHECKING:
    from pathlib import Path

# What skl2onnx writes as MatMul, Add, Sub and Div instead of ai.onnx.ml operators when asked.
STANDARD_OPS = {"LinearRegressor", "LinearClassifier", "Scaler", "Normalizer"}


def convert(model: Any, features: np.ndarray, path: Path, **options: Any) -> Path:
    from skl2onnx import to_onnx

    path.write_bytes(to_onnx(model, features[:1], **options).SerializeToString())
    return path


def regression(tmp_path: Path, features: int = 20) -> tuple[np.ndarray, np.ndarray, Path]:
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=300, n_features=features, noise=5, random_state=0)
    x, y = x.astype(np.float32), y.astype(np.float32)
    np.savez(tmp_path / "eval.npz", X=x, targets=y)
    return x, y, tmp_path / "eval.npz"


def classification(tmp_path: Path, features: int = 20) -> tuple[np.ndarray, np.ndarray, Path]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=400, n_features=features, n_informative=8, n_classes=3, random_state=0
    )
    x = x.astype(np.float32)
    np.savez(tmp_path / "eval.npz", X=x, labels=y)
    return x, y, tmp_path / "eval.npz"


def test_a_ridge_model_is_refused_naming_linear_regressor_and_the_way_out(tmp_path: Path) -> None:
    from sklearn.linear_model import Ridge

    x, y, evaluation = regression(tmp_path)
    model = convert(Ridge().fit(x, y), x, tmp_path / "ridge.onnx")
    output = tmp_path / "ridge-int8.onnx"
    with pytest.raises(NotQuantizable) as refused:
        optimize_model(model, output, mode="int8-dynamic", evaluation=evaluation)
    message = refused.value.message
    assert message.startswith("int8-dynamic cannot quantize 'ridge.onnx': its weights are held by ")
    assert "LinearRegressor (ai.onnx.ml)" in message
    assert "not the attributes of ai.onnx.ml ones" in message
    assert "black_op={'LinearRegressor'}" in message
    assert f"serve the float model as it is ({model.stat().st_size:,} bytes)" in message
    assert not output.exists()


def test_a_ridge_model_made_larger_by_graph_mode_is_written_only_with_allow_larger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.linear_model import LinearRegression

    x, y, evaluation = regression(tmp_path)
    model = convert(LinearRegression().fit(x, y), x, tmp_path / "linear.onnx")
    output = tmp_path / "linear-graph.onnx"
    command = ["optimize", str(model), "-o", str(output), "--mode", "graph", "--eval", str(evaluation)]

    assert main(command) == 2
    refused = capsys.readouterr().err
    sizes = re.search(
        r"graph made 'linear.onnx' larger: ([\d,]+) -> ([\d,]+) bytes \(([\d.]+)x the input\)", refused
    )
    assert sizes, refused
    assert "nothing was written (`maas optimize --allow-larger` writes it anyway)" in refused
    assert not output.exists()
    before, after = (int(sizes.group(i).replace(",", "")) for i in (1, 2))
    assert before == model.stat().st_size
    assert after > before
    assert float(sizes.group(3)) == pytest.approx(after / before, abs=0.005)

    assert main([*command, "--allow-larger"]) == 0
    written = capsys.readouterr().out
    assert output.stat().st_size == after
    assert f"wrote {output}: {before:,} -> {after:,} bytes ({after / before:.2f}x the input)" in written
    assert "rmse is scored on output 'variable'" in written


@pytest.mark.parametrize(
    ("kind", "mode"),
    [("RandomForestRegressor", "int8-dynamic"), ("GradientBoostingClassifier", "int8-static")],
)
def test_a_tree_ensemble_is_refused_naming_its_operator_and_why(tmp_path: Path, kind: str, mode: str) -> None:
    from sklearn import ensemble

    if kind.endswith("Regressor"):
        x, y, evaluation = regression(tmp_path)
    else:
        x, y, evaluation = classification(tmp_path)
    trees = getattr(ensemble, kind)(n_estimators=10, max_depth=4, random_state=0).fit(x, y)
    model = convert(trees, x, tmp_path / "trees.onnx")  # the classifier's ZipMap as skl2onnx makes it
    output = tmp_path / "trees-int8.onnx"
    with pytest.raises(NotQuantizable) as refused:
        optimize_model(model, output, mode=mode, evaluation=evaluation, calibration=evaluation)
    message = refused.value.message
    operator = "TreeEnsembleRegressor" if kind.endswith("Regressor") else "TreeEnsembleClassifier"
    assert f"its weights are held by {operator} (ai.onnx.ml)" in message
    assert (
        "which onnxruntime's quantizer cannot rewrite: it quantizes the weight tensors of standard" in message
    )
    assert "fewer or shallower trees (n_estimators, max_depth) make it smaller" in message
    assert message.endswith("Nothing was written.")
    assert not output.exists()


def test_a_scaler_and_logistic_regression_pipeline_is_refused_naming_both(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, evaluation = classification(tmp_path)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    model = convert(pipeline, x, tmp_path / "pipeline.onnx", options={"zipmap": False})
    with pytest.raises(NotQuantizable) as refused:
        optimize_model(model, tmp_path / "out.onnx", mode="int8-dynamic", evaluation=evaluation)
    message = refused.value.message
    assert "held by LinearClassifier (ai.onnx.ml), Scaler (ai.onnx.ml)" in message
    assert "black_op={'LinearClassifier', 'Scaler'}" in message
    assert not (tmp_path / "out.onnx").exists()


def test_a_wide_pipeline_converted_to_standard_operators_is_quantized_and_gated_on_its_labels(
    tmp_path: Path,
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, evaluation = classification(tmp_path, features=1000)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    model = convert(pipeline, x, tmp_path / "wide.onnx", options={"zipmap": False}, black_op=STANDARD_OPS)
    output = tmp_path / "wide-int8.onnx"
    report = optimize_model(model, output, mode="int8-dynamic", evaluation=evaluation)
    assert output.stat().st_size == report.optimized_size < 0.7 * model.stat().st_size
    assert report.original.quality == pytest.approx(pipeline.score(x, y) * 100)
    assert report.quality_drop <= 1.0
    labels = load_runtime(output).predict({"X": x})["label"]
    assert report.optimized.quality == pytest.approx((labels == y).mean() * 100)
    notes = report.notes()
    assert "accuracy is scored on output 'label'" in notes
    moved = [
        note
        for note in notes
        if note.startswith("'probabilities' is not scored: its values moved by at most")
    ]
    assert moved and 0 < report.output_changes["probabilities"] < 0.1


def test_a_zipmap_classifier_is_refused_saying_how_to_convert_it(tmp_path: Path) -> None:
    from sklearn.neural_network import MLPClassifier

    x, y, evaluation = classification(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged: it needs to be a classifier, not a good one
        network = MLPClassifier(hidden_layer_sizes=(32,), max_iter=50, random_state=0).fit(x, y)
    model = convert(network, x, tmp_path / "mlp.onnx")
    with pytest.raises(InvalidInput) as refused:
        optimize_model(model, tmp_path / "out.onnx", mode="int8-dynamic", evaluation=evaluation)
    message = refused.value.message
    assert "outputs 'output_probability' as a sequence of maps (skl2onnx's ZipMap)" in message
    assert "options={'zipmap': False}" in message and "scores the accuracy of 'label'" in message
    assert not (tmp_path / "out.onnx").exists()


def test_a_classifier_with_zipmap_columns_is_scored_on_output_label(tmp_path: Path) -> None:
    from sklearn.neural_network import MLPClassifier

    x, y, evaluation = classification(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = MLPClassifier(hidden_layer_sizes=(64,), max_iter=100, random_state=0).fit(x, y)
    model = convert(network, x, tmp_path / "mlp.onnx", options={"zipmap": "columns"})
    output = tmp_path / "mlp-int8.onnx"
    report = optimize_model(model, output, mode="int8-dynamic", evaluation=evaluation, max_drop=5)
    assert report.original.quality == pytest.approx(network.score(x, y) * 100)
    assert report.scored_output == "output_label"
    labels = load_runtime(output).predict({"X": x})["output_label"]
    assert report.optimized.quality == pytest.approx((labels == y).mean() * 100)
    assert report.optimized_size < model.stat().st_size


def test_a_result_that_is_larger_is_refused_in_python_too(tmp_path: Path) -> None:
    from sklearn.linear_model import Ridge

    x, y, evaluation = regression(tmp_path)
    model = convert(Ridge().fit(x, y), x, tmp_path / "ridge.onnx", black_op=STANDARD_OPS)
    output = tmp_path / "ridge-int8.onnx"
    # Twenty float weights: their int8 copy, its scale and the quantizing nodes outweigh them.
    with pytest.raises(LargerThanInput, match=r"larger: [\d,]+ -> [\d,]+ bytes \(\d\.\d\dx the input\)"):
        optimize_model(model, output, mode="int8-dynamic", evaluation=evaluation, max_drop=100)
    assert not output.exists()
    report = optimize_model(
        model, output, mode="int8-dynamic", evaluation=evaluation, max_drop=100, allow_larger=True
    )
    assert output.stat().st_size == report.optimized_size > report.original_size
