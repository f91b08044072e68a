"""`maas predict NAME FILE` against a real HTTP API: the predict handler behind the local
gateway, as `maas dev` serves it, on a free loopback port. A user with a row file or an OIP
request gets the model's outputs printed, or the server's reason and a non-zero exit."""

from __future__ import annotations

import csv
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from maas.cli import main
from maas.local.gateway import LocalGateway, load_handler_module
from tests import fakes
from tests.conftest import PREDICT_HANDLER


@pytest.fixture(scope="module")
def served_models(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """digits, sum (v1: a + b, v2: a + b + 1) and `fixed` (exported with a static batch of 4)."""
    root = tmp_path_factory.mktemp("predict-models")
    shutil.copytree(model_dir / "digits", root / "digits")
    fakes.sum_model(root / "sum" / "1" / "model.onnx")
    fakes.sum_model(root / "sum" / "2" / "model.onnx", plus=1.0)
    fakes.fixed_rows_model(root / "fixed" / "1" / "model.onnx", rows=4)
    return root


@pytest.fixture(scope="module")
def api_url(served_models: Path) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MAAS_MODEL_DIR", str(served_models))
        handler = load_handler_module(PREDICT_HANDLER).handler
    gateway = LocalGateway("127.0.0.1", 0, {"/v2": handler})
    thread = threading.Thread(target=gateway.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = gateway.server_address
        yield f"http://{host}:{port}"
    finally:
        gateway.shutdown()
        gateway.server_close()
        thread.join(10)


def predict(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    code = main(["predict", *args, "--url", url, "--no-sign"])
    captured = capsys.readouterr()
    # The server runs in this process: its EMF lines (a model load's time) land in the same stdout.
    out = "".join(line for line in captured.out.splitlines(keepends=True) if not line.startswith('{"_aws"'))
    return code, out, captured.err


def digits_rows(count: int) -> np.ndarray:
    from maas.local.demo import digits_split

    _, test_x, _, _ = digits_split()
    return np.asarray(test_x[:count], dtype=np.float32)


def onnx_labels(model: Path, rows: np.ndarray) -> list[int]:
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return session.run(None, {"input": rows})[names.index("label")].tolist()  # type: ignore[no-any-return]


def test_a_npy_file_of_digits_prints_one_label_per_row(
    capsys: pytest.CaptureFixture[str], api_url: str, served_models: Path, tmp_path: Path
) -> None:
    rows = digits_rows(5)
    np.save(tmp_path / "pixels.npy", rows)

    code, out, _ = predict(capsys, api_url, "digits", str(tmp_path / "pixels.npy"))

    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == ["ROW", "label", "probabilities"]
    expected = onnx_labels(served_models / "digits" / "1" / "model.onnx", rows)
    assert [int(line.split()[1]) for line in lines] == expected
    assert [int(line.split()[0]) for line in lines] == [0, 1, 2, 3, 4]


def test_a_csv_feeds_each_input_its_columns_and_json_prints_the_oip_answer(
    capsys: pytest.CaptureFixture[str], api_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "pairs.csv"
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["b_0", "b_1", "b_2", "a_0", "a_1", "a_2"])
        writer.writerow([10, 20, 30, 1, 2, 3])
        writer.writerow([0.5, 0.5, 0.5, -1, -2, -3])

    code, out, _ = predict(capsys, api_url, "sum", str(path), "--version", "1", "--json")

    assert code == 0
    answer = json.loads(out)
    assert answer["model_version"] == "1"
    outputs = {item["name"]: item for item in answer["outputs"]}
    assert outputs["sum"]["shape"] == [2, 3]
    assert outputs["sum"]["data"] == [11, 22, 33, -0.5, -1.5, -2.5]


def test_version_selects_what_answers(
    capsys: pytest.CaptureFixture[str], api_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(
        json.dumps({"inputs": [{"name": "a", "data": [1, 1, 1]}, {"name": "b", "data": [2, 2, 2]}]})
    )

    code, out, _ = predict(capsys, api_url, "sum", str(path), "--version", "2", "--json")

    assert code == 0
    answer = json.loads(out)
    assert answer["model_version"] == "2"
    assert next(o for o in answer["outputs"] if o["name"] == "sum")["data"] == [4, 4, 4]


def test_an_oip_request_file_is_sent_as_it_is(
    capsys: pytest.CaptureFixture[str], api_url: str, tmp_path: Path
) -> None:
    request = {
        "inputs": [
            {"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
            {"name": "b", "shape": [1, 3], "datatype": "FP32", "data": [1, 1, 1]},
        ],
        "outputs": [{"name": "difference"}],
    }
    (tmp_path / "request.json").write_text(json.dumps(request))

    code, out, _ = predict(capsys, api_url, "sum", str(tmp_path / "request.json"), "--version", "1")

    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["ROW", "difference"]  # the request asked for this output only
    assert row.split(maxsplit=1) == ["0", "[0, 1, 2]"]


def test_a_model_with_a_static_batch_gets_full_groups_and_every_row_back(
    capsys: pytest.CaptureFixture[str], api_url: str, tmp_path: Path
) -> None:
    rows = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)  # groups of 4: the second is short
    np.save(tmp_path / "rows.npy", rows)

    code, out, _ = predict(capsys, api_url, "fixed", str(tmp_path / "rows.npy"), "--json")

    assert code == 0
    (total,) = json.loads(out)["outputs"]
    assert total["shape"] == [6]
    assert total["data"] == rows.sum(axis=1).tolist()


BAD_REQUESTS = {
    "an unknown model": ("nope", "rows.jsonl", "[1, 2, 3]\n", "answered 404: model 'nope' not found"),
    "a .json that is no JSON": ("sum", "request.json", "{not json", "request.json is not JSON"),
    "JSON that is no request": ("sum", "request.json", "[1, 2]", 'it must hold {"inputs": [...]}'),
    "a row of the wrong size": (
        "digits",
        "rows.jsonl",
        "[1, 2, 3]\n",
        "row 0 of rows.jsonl: cannot read row: input 'input' needs 64",
    ),
    "a file of no known kind": (
        "digits",
        "rows.txt",
        "x",
        "'rows.txt' is neither an OIP request (.json) nor a row file",
    ),
    "a request the server refuses": (
        "sum",
        "request.json",
        json.dumps({"inputs": [{"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}),
        "answered 400: missing input(s): b",
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_what_cannot_be_predicted_is_explained_with_exit_code_2(
    capsys: pytest.CaptureFixture[str], api_url: str, tmp_path: Path, case: tuple[str, str, str, str]
) -> None:
    model, name, content, message = case
    (tmp_path / name).write_text(content)

    code, out, err = predict(capsys, api_url, model, str(tmp_path / name))

    assert code == 2
    assert out == ""
    assert message in err
    assert err.startswith("maas: error: ")


def test_a_server_that_is_down_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "rows.jsonl").write_text("[1, 2, 3]\n")
    code, _, err = predict(capsys, f"http://127.0.0.1:{port}", "sum", str(tmp_path / "rows.jsonl"))
    assert code == 2
    assert f"GET http://127.0.0.1:{port}/v2/models/sum failed" in err


def test_a_missing_file_is_named(capsys: pytest.CaptureFixture[str], api_url: str) -> None:
    code, _, err = predict(capsys, api_url, "sum", "no-such-rows.csv")
    assert code == 2
    assert "maas: error: no file at no-such-rows.csv" in err
