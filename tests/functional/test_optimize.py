"""`maas optimize`: smaller models that keep their quality, and a gate that refuses the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maas.cli import main
from maas.dataplane import DataPlane
from maas.errors import InvalidInput, QualityGateFailed
from maas.local.demo import build_digits_onnx, digits_split
from maas.optimize import LargerThanInput, Mode, NotQuantizable, optimize_model
from maas.protocol import InferenceRequest
from maas.registry import Registry
from maas.runtimes import load_runtime
from maas.sources import DirectorySource


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The float digits model, its held-out evaluation file, and calibration files good and broken."""
    root = tmp_path_factory.mktemp("optimize")
    build_digits_onnx(root / "digits.onnx", quantize=False)
    train_x, test_x, _, test_y = digits_split()
    np.savez(root / "eval.npz", input=test_x, labels=test_y)
    np.savez(root / "calibration.npz", input=train_x[:300])
    np.savez(root / "constant.npz", input=np.zeros_like(train_x[:300]))
    return {
        "model": root / "digits.onnx",
        "eval": root / "eval.npz",
        "calibration": root / "calibration.npz",
        "constant": root / "constant.npz",
    }


@pytest.mark.parametrize("mode", [Mode.DYNAMIC, Mode.STATIC, Mode.GRAPH])
def test_optimized_digits_keep_accuracy_within_the_threshold(
    digits: dict[str, Path], tmp_path: Path, mode: Mode
) -> None:
    output = tmp_path / "digits-opt.onnx"
    report = optimize_model(
        digits["model"],
        output,
        mode=mode,
        evaluation=digits["eval"],
        calibration=digits["calibration"],
        allow_larger=mode is Mode.GRAPH,  # graph mode adds ONNX Runtime's operator sets: 1.01x
    )
    assert output.is_file()
    assert report.metric == "accuracy"
    assert report.original.quality > 93
    assert report.quality_drop <= 1.0
    assert report.optimized.quality == pytest.approx(load_accuracy(output, digits["eval"]))
    if mode is not Mode.GRAPH:
        assert report.optimized_size < report.original_size
    assert set(report.as_metrics()) == {"accuracy", "accuracy_original", "size_ratio", "latency_ratio"}


def load_accuracy(path: Path, evaluation: Path) -> float:
    with np.load(evaluation) as data:
        labels = load_runtime(path).predict({"input": data["input"]})["label"]
        return float((labels == data["labels"]).mean() * 100)


def test_broken_calibration_is_refused_with_both_scores(digits: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "digits-bad.onnx"
    with pytest.raises(QualityGateFailed) as refused:
        optimize_model(
            digits["model"],
            output,
            mode="int8-static",
            evaluation=digits["eval"],
            calibration=digits["constant"],
        )
    message = refused.value.message
    assert "int8-static made accuracy 97." in message
    assert "allowed 1.0); nothing was written" in message
    assert not output.exists()


def test_the_ort_format_loads_and_serves(digits: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "models" / "digits" / "1" / "model.ort"
    optimize_model(digits["model"], output, mode="int8-dynamic", evaluation=digits["eval"], ort_format=True)
    assert output.read_bytes()[4:8] == b"ORTM"  # the ORT flatbuffer's file identifier
    plane = DataPlane(DirectorySource(tmp_path / "models"))
    _, test_x, _, test_y = digits_split()
    request = InferenceRequest.model_validate(
        {"inputs": [{"name": "input", "shape": [5, 64], "datatype": "FP32", "data": test_x[:5].tolist()}]}
    )
    outputs = {o.name: o for o in plane.infer("digits", request).response.outputs}
    assert outputs["label"].data == test_y[:5].tolist()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mode": "int8-static"}, "needs a calibration file"),
        ({"mode": "int4"}, "mode 'int4' is not one of"),
        ({"mode": "int8-dynamic", "ort_format": True}, "the output must end in .ort"),
    ],
)
def test_unusable_arguments_are_refused(
    digits: dict[str, Path], tmp_path: Path, arguments: dict, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        optimize_model(digits["model"], tmp_path / "out.onnx", evaluation=digits["eval"], **arguments)


def test_a_calibration_file_may_hold_labels_but_must_hold_the_inputs(
    digits: dict[str, Path], tmp_path: Path
) -> None:
    # The evaluation file doubles as calibration: its labels are ignored.
    report = optimize_model(
        digits["model"],
        tmp_path / "out.onnx",
        mode="int8-static",
        evaluation=digits["eval"],
        calibration=digits["eval"],
    )
    assert report.quality_drop <= 1.0
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, pixels=np.zeros((4, 64), dtype=np.float32))
    with pytest.raises(InvalidInput, match="lacks input\\(s\\) input of the model"):
        optimize_model(
            digits["model"],
            tmp_path / "o.onnx",
            mode="int8-static",
            evaluation=digits["eval"],
            calibration=wrong,
        )


def test_an_evaluation_file_without_labels_or_targets_is_refused(
    digits: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, input=np.zeros((2, 64), dtype=np.float32))
    with pytest.raises(InvalidInput, match="needs exactly one of 'labels' or 'targets'"):
        optimize_model(digits["model"], tmp_path / "out.onnx", mode="int8-dynamic", evaluation=bad)


def test_a_regressor_is_gated_on_rmse(tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(0)
    features = rng.random((400, 8), dtype=np.float32)
    targets = features @ rng.random(8, dtype=np.float32)
    regressor = MLPRegressor(hidden_layer_sizes=(32,), max_iter=500, random_state=0).fit(features, targets)
    model = tmp_path / "regressor.onnx"
    model.write_bytes(
        to_onnx(regressor, initial_types=[("input", FloatTensorType([None, 8]))]).SerializeToString()
    )
    np.savez(tmp_path / "eval.npz", input=features, targets=targets)
    report = optimize_model(
        model,
        tmp_path / "out.onnx",
        mode="int8-dynamic",
        evaluation=tmp_path / "eval.npz",
        max_drop=50,
        allow_larger=True,  # 8 x 32 weights: their int8 copy with its scales and nodes outweighs them
    )
    assert report.metric == "rmse"
    assert report.original.quality < 0.5


def test_graph_mode_that_grows_the_digits_model_writes_nothing(
    digits: dict[str, Path], tmp_path: Path
) -> None:
    output = tmp_path / "digits-graph.onnx"
    with pytest.raises(LargerThanInput) as refused:
        optimize_model(digits["model"], output, mode="graph", evaluation=digits["eval"])
    size = digits["model"].stat().st_size
    assert f"graph made 'digits.onnx' larger: {size:,} -> " in refused.value.message
    assert not output.exists()


def test_a_quantizer_that_rewrites_nothing_is_refused(tmp_path: Path) -> None:
    """A MatMul whose weight is its first operand: the quantizer leaves it in float."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).random((8, 4), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["W", "input"], ["output"])],
        "weights-first",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [4, None])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [8, None])],
        [numpy_helper.from_array(weights, "W")],
    )
    model = tmp_path / "weights-first.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    columns = np.random.default_rng(1).random((4, 16), dtype=np.float32)
    np.savez(tmp_path / "eval.npz", input=columns, targets=weights @ columns)
    output = tmp_path / "out.onnx"
    with pytest.raises(NotQuantizable, match=r"left every weight of 'weights-first\.onnx' in float"):
        optimize_model(model, output, mode="int8-dynamic", evaluation=tmp_path / "eval.npz")
    assert not output.exists()


def test_the_cli_prints_the_comparison(
    digits: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "cli.onnx"
    code = main(["optimize", str(digits["model"]), "-o", str(output), "--eval", str(digits["eval"])])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0].split() == ["original", "optimized", "ratio"]
    assert "accuracy" in out and "accuracy is scored on output 'label'" in out
    assert f"wrote {output}: {digits['model'].stat().st_size:,} -> {output.stat().st_size:,} bytes (0." in out


def test_register_with_optimize_records_the_figures(
    digits: dict[str, Path], dynamo_registry: Registry, aws_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    table = dynamo_registry.store.table_name  # type: ignore[attr-defined]
    code = main(
        [
            "models", "--endpoint-url", aws_endpoint, "--table", table, "--bucket", dynamo_registry.artifacts.bucket,
            "register", "digits", str(digits["model"]), "--optimize", "int8-dynamic", "--eval", str(digits["eval"]),
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    version = dynamo_registry.get("digits", 1)
    assert version.quantization == "int8-dynamic"
    assert version.metrics["accuracy"] > 93
    assert version.metrics["size_ratio"] < 1
    assert version.size < digits["model"].stat().st_size
