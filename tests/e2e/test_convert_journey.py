"""From trained models to served ones, on one `maas dev`: a model of each kind is converted,
verified and registered in one step (`maas models register --convert`), promoted, and answers
the OIP request with its framework's own prediction."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import numpy as np
import pytest

from maas.cli import main
from maas.convert import INT8_TOLERANCE
from tests import convert_models
from tests.e2e.conftest import DevServer

pytestmark = pytest.mark.e2e

ROWS = 20  # rows per request: each model answers them as one batch


def register(server: DevServer, capsys: pytest.CaptureFixture[str], name: str, *args: str) -> dict:
    code = main(["models", "--endpoint-url", server.aws_endpoint, "--json", "register", name, *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert main(["models", "--endpoint-url", server.aws_endpoint, "promote", name, "1"]) == 0
    capsys.readouterr()
    return json.loads(captured.out)


def infer(server: DevServer, name: str, sample: Path) -> dict[str, np.ndarray]:
    inputs = []
    with np.load(sample) as arrays:
        for input_name in arrays.files:
            rows = arrays[input_name][:ROWS]
            text = rows.dtype.kind == "U"
            inputs.append(
                {
                    "name": input_name,
                    "shape": list(rows.shape),
                    "datatype": "BYTES" if text else "FP32",
                    "data": rows.ravel().tolist(),
                }
            )
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request(
        "POST",
        f"/v2/models/{name}/infer",
        json.dumps({"inputs": inputs}),
        {"content-type": "application/json"},
    )
    response = connection.getresponse()
    answer = json.loads(response.read())
    assert response.status == 200, answer
    return {output["name"]: np.array(output["data"]).reshape(output["shape"]) for output in answer["outputs"]}


def test_every_kind_of_model_is_converted_registered_and_served(
    dev_server: DevServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = convert_models.categorical_pipeline(tmp_path)
    xgboost = convert_models.xgboost_classifier(tmp_path)
    lightgbm = convert_models.lightgbm_classifier(tmp_path)
    torch_mlp = convert_models.torch_mlp(tmp_path)
    keras = convert_models.keras_classifier(tmp_path)
    calibration = str(tmp_path / "keras-calibration.npz")

    version = register(
        dev_server,
        capsys,
        "shop",
        "--convert",
        str(pipeline.source),
        "--sample",
        str(pipeline.sample),
        "--trust-pickle",
    )
    assert version["framework"] == "onnx"
    assert version["labels"]["convert.framework"] == "scikit-learn"
    assert "convert.version.skl2onnx" in version["labels"]
    register(dev_server, capsys, "cancer-xgb", "--convert", str(xgboost.source))
    register(dev_server, capsys, "cancer-lgbm", "--convert", str(lightgbm.source), "--label", "team=risk")
    register(
        dev_server,
        capsys,
        "digits-torch",
        "--convert",
        str(torch_mlp.source),
        "--sample",
        str(torch_mlp.sample),
    )
    keras_float = register(
        dev_server, capsys, "digits-keras", "--convert", str(keras.source), "--sample", str(keras.sample)
    )
    assert keras_float["framework"] == "tflite"
    keras_int8 = register(
        dev_server,
        capsys,
        "digits-keras-int8",
        "--convert",
        str(keras.source),
        "--sample",
        str(keras.sample),
        "--int8",
        calibration,
    )
    assert keras_int8["size"] < keras_float["size"] / 2

    for name, model in (("shop", pipeline), ("cancer-xgb", xgboost), ("cancer-lgbm", lightgbm)):
        answer = infer(dev_server, name, model.sample)
        np.testing.assert_array_equal(answer["label"], model.expected["label"][:ROWS])
        np.testing.assert_allclose(answer["probabilities"], model.expected["probabilities"][:ROWS], atol=1e-4)
    answer = infer(dev_server, "digits-torch", torch_mlp.sample)
    np.testing.assert_allclose(answer["output"], torch_mlp.expected["output"][:ROWS], atol=1e-5)
    answer = infer(dev_server, "digits-keras", keras.sample)
    np.testing.assert_allclose(answer["output_0"], keras.expected["output_0"][:ROWS], atol=1e-4)
    answer = infer(dev_server, "digits-keras-int8", keras.sample)
    assert np.abs(answer["output_0"] - keras.expected["output_0"][:ROWS]).max() <= INT8_TOLERANCE


def test_a_disagreeing_conversion_registers_nothing(
    dev_server: DevServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = convert_models.categorical_pipeline(tmp_path)
    code = main(
        ["models", "--endpoint-url", dev_server.aws_endpoint, "register", "broken-shop", "--convert", str(pipeline.source),
         "--sample", str(pipeline.sample), "--trust-pickle", "--converter-option", "raw_scores=true"]
    )  # fmt: skip
    error = capsys.readouterr().err
    assert code == 2
    assert "disagrees with the original" in error and "original [" in error
    assert main(["models", "--endpoint-url", dev_server.aws_endpoint, "show", "broken-shop"]) == 2
    assert "not found" in capsys.readouterr().err
