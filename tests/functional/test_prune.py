"""`maas optimize --prune`: hidden units of MLP graphs removed, the graph rewritten smaller,
gated like quantization, and graphs it cannot prune safely refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from maas.cli import main
from maas.errors import InvalidInput, QualityGateFailed
from maas.local.demo import digits_split
from maas.optimize import NotPrunable, optimize_model, prune_model
from maas.runtimes import load_runtime
from tests import fakes


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A float MLP of the digits with two hidden layers (256, 128) behind a scaler, and its evaluation file."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = tmp_path_factory.mktemp("prune")
    train_x, test_x, train_y, test_y = digits_split()
    model = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(256, 128), max_iter=60, random_state=0)
    ).fit(train_x, train_y)
    onnx_model = to_onnx(
        model, train_x[:1], options={"zipmap": False}, target_opset={"": 17, "ai.onnx.ml": 3}
    )
    (root / "mlp.onnx").write_bytes(onnx_model.SerializeToString())
    np.savez(root / "eval.npz", X=test_x, labels=test_y)
    return {"model": root / "mlp.onnx", "eval": root / "eval.npz"}


def weight_shapes(path: Path) -> list[list[int]]:
    return [
        list(t.dims) for t in onnx.load(str(path)).graph.initializer if len(t.dims) == 2 and t.dims[0] > 1
    ]


def test_pruning_shrinks_the_hidden_layers_and_keeps_accuracy(mlp: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "pruned.onnx"
    report = optimize_model(
        mlp["model"], output, mode="prune", prune=0.3, evaluation=mlp["eval"], max_drop=2.0
    )
    assert weight_shapes(mlp["model"]) == [[64, 256], [256, 128], [128, 10]]
    assert weight_shapes(output) == [[64, 179], [179, 90], [90, 10]]
    assert report.quality_drop <= 2.0
    assert report.optimized_size < 0.6 * report.original_size
    with np.load(mlp["eval"]) as data:
        labels = load_runtime(output).predict({"X": data["X"]})["label"]
        assert float((labels == data["labels"]).mean() * 100) == pytest.approx(report.optimized.quality)
    assert any("pruned 2 hidden layer(s): " in note for note in report.notes())


def test_the_pruned_graph_answers_as_the_unpruned_one_where_the_removed_units_were_silent(
    tmp_path: Path,
) -> None:
    """Units whose weights are zero carry nothing: removing them changes no answer."""
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(4, 6)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)
    first[:, [1, 4]] = 0  # two silent units
    second[[1, 4], :] = 0
    path = dense_graph(tmp_path / "dense.onnx", first, second)
    layers = prune_model(path, tmp_path / "pruned.onnx", ratio=1 / 3)
    assert [layer.note() for layer in layers] == ["'w1': 6 -> 4 units"]
    rows = rng.normal(size=(5, 4)).astype(np.float32)
    before = load_runtime(path).predict({"x": rows})["y"]
    after = load_runtime(tmp_path / "pruned.onnx").predict({"x": rows})["y"]
    np.testing.assert_allclose(after, before, rtol=1e-6)


def test_too_much_pruning_is_refused_with_both_scores(mlp: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "gutted.onnx"
    with pytest.raises(
        QualityGateFailed, match=r"prune made accuracy 9\d\.\d+ -> \d+\.\d+ .*nothing was written"
    ):
        optimize_model(mlp["model"], output, mode="prune", prune=0.97, evaluation=mlp["eval"])
    assert not output.exists()


def test_pruning_then_quantizing(
    mlp: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "small.onnx"
    code = main(
        ["optimize", str(mlp["model"]), "-o", str(output), "--prune", "0.3", "--mode", "int8-dynamic",
         "--eval", str(mlp["eval"]), "--max-drop", "2"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "pruned 2 hidden layer(s)" in out and output.is_file()
    assert any(t.data_type == TensorProto.INT8 for t in onnx.load(str(output)).graph.initializer)


def test_graphs_without_a_prunable_layer_are_refused(tmp_path: Path, mlp: dict[str, Path]) -> None:
    fakes.sum_model(tmp_path / "sum.onnx")
    with pytest.raises(NotPrunable, match=r"no hidden dense layer maas can prune safely.*Add, Sub"):
        prune_model(tmp_path / "sum.onnx", tmp_path / "out.onnx", ratio=0.5)
    assert not (tmp_path / "out.onnx").exists()
    quantized = tmp_path / "int8.onnx"
    optimize_model(mlp["model"], quantized, mode="int8-dynamic", evaluation=mlp["eval"], max_drop=5)
    with pytest.raises(NotPrunable, match="quantized already: prune the float model, then quantize"):
        prune_model(quantized, tmp_path / "out.onnx", ratio=0.5)


def test_a_residual_branch_is_not_pruned(tmp_path: Path) -> None:
    """h = relu(x W1) feeds both h W2 and the sum y + h: removing units of h would change y + h."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.normal(size=(4, 4)).astype(np.float32), name) for name in ("w1", "w2")
    ]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["m"]),
            helper.make_node("Relu", ["m"], ["h"]),
            helper.make_node("MatMul", ["h", "w2"], ["z"]),
            helper.make_node("Add", ["z", "h"], ["y"]),
        ],
        "residual",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
        weights,
    )
    path = save(graph, tmp_path / "residual.onnx")
    with pytest.raises(NotPrunable):
        prune_model(path, tmp_path / "out.onnx", ratio=0.5)


@pytest.mark.parametrize("ratio", [0, 1, -0.5, 1.5])
def test_the_ratio_is_a_share_of_units(mlp: dict[str, Path], tmp_path: Path, ratio: float) -> None:
    with pytest.raises(InvalidInput, match="share of hidden units removed"):
        prune_model(mlp["model"], tmp_path / "out.onnx", ratio=ratio)


def test_mode_prune_needs_a_ratio(mlp: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="--prune RATIO"):
        optimize_model(mlp["model"], tmp_path / "out.onnx", mode="prune", evaluation=mlp["eval"])


def dense_graph(path: Path, first: np.ndarray, second: np.ndarray) -> Path:
    """y = tanh(x W1 + b1) W2 + b2, as Gemm (transB) then MatMul and Add."""
    rng = np.random.default_rng(1)
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(first.T), "w1"),  # Gemm transB=1: stored [units, in]
        numpy_helper.from_array(rng.normal(size=first.shape[1]).astype(np.float32), "b1"),
        numpy_helper.from_array(second, "w2"),
        numpy_helper.from_array(rng.normal(size=(1, second.shape[1])).astype(np.float32), "b2"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w1", "b1"], ["g"], transB=1),
            helper.make_node("Tanh", ["g"], ["h"]),
            helper.make_node("MatMul", ["h", "w2"], ["m"]),
            helper.make_node("Add", ["m", "b2"], ["y"]),
        ],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, first.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, second.shape[1]])],
        initializers,
    )
    return save(graph, path)


def save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
