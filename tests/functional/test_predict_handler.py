"""The predict Lambda handler, driven by the API Gateway HTTP API events AWS would send it."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnxruntime
import pytest
from onnxruntime.capi.onnxruntime_pybind11_state import EPFail, Fail, RuntimeException

from maas.local.context import LocalLambdaContext
from maas.local.events import HttpResponse, http_api_event, http_response
from maas.local.gateway import load_handler_module
from tests import fakes
from tests.conftest import PREDICT_HANDLER, REPO_ROOT

GOLDEN = sorted((REPO_ROOT / "tests" / "data" / "golden").glob("*.json"))

Handler = Any


@pytest.fixture(scope="module")
def handler_module(model_dir: Path) -> ModuleType:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MAAS_MODEL_DIR", str(model_dir))
        return load_handler_module(PREDICT_HANDLER)


@pytest.fixture(scope="module")
def handler(handler_module: ModuleType) -> Handler:
    return handler_module.handler


def call(handler: Handler, method: str, path: str, body: bytes = b"", **headers: str) -> HttpResponse:
    headers.setdefault("content-type", "application/json")
    event = http_api_event(method=method, target=path, headers=headers, body=body)
    return http_response(handler(event, LocalLambdaContext()))


@pytest.mark.parametrize("golden", GOLDEN, ids=[path.stem for path in GOLDEN])
def test_each_route_answers_as_its_golden_file_says(handler: Handler, golden: Path) -> None:
    case = json.loads(golden.read_text())
    request, expected = case["request"], case["response"]
    body = json.dumps(request["body"]).encode() if "body" in request else b""
    response = call(handler, request["method"], request["path"], body)
    assert response.status == expected["status"], response.body
    assert response.headers["content-type"] == "application/json"
    answer = json.loads(response.body)
    if "body" in expected:
        assert answer == expected["body"]
    if "error_starts_with" in expected:
        assert answer["error"].startswith(expected["error_starts_with"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the request body is empty"),
        (b"   ", "the request body is empty"),
        (b'{"inputs": [', "invalid inference request: Invalid JSON"),
        (b"[1, 2]", "invalid inference request: Input should be an object"),
        (b'{"inputs": [{"name": "a"}]}', "inputs.0.shape: Field required"),
        (b'{"inputs": [{"name": "a", "shape": "x", "datatype": "FP32", "data": []}]}', "inputs.0.shape"),
        (b"\xff\xfe", "the request body is not UTF-8: byte 0 (0xff)"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid inference request"),
    ],
)
def test_malformed_bodies_get_a_400_naming_the_problem(handler: Handler, body: bytes, message: str) -> None:
    response = call(handler, "POST", "/v2/models/sum/infer", body)
    assert response.status == 400
    assert message in json.loads(response.body)["error"]


ROW = ",".join(["1"] * 64)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (
            "/v2/models/digits/infer",
            '{"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":[NaN,'
            + ",".join(["1"] * 63)
            + "]}]}",
            400,
            "must be finite numbers",
        ),
        (
            "/v2/models/digits/infer",
            '{"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":[Infinity,'
            + ",".join(["1"] * 63)
            + "]}]}",
            400,
            "must be finite numbers",
        ),
        (
            "/v2/models/digits/infer",
            json.dumps(
                {
                    "inputs": [
                        {"name": f"i{k}", "shape": [1], "datatype": "FP32", "data": [1]}
                        for k in range(10_000)
                    ]
                }
            ),
            400,
            "unknown input 'i0'",
        ),
        (
            "/v2/models/digits/infer",
            '{"inputs":[{"name":"input","shape":[1000000000000000000,64],"datatype":"FP32","data":['
            + ROW
            + "]}]}",
            400,
            "needs 64000000000000000000",
        ),
        (
            "/v2/models/digits/infer",
            '{"inputs":[{"name":"input","shape":[-5,64],"datatype":"FP32","data":[' + ROW + "]}]}",
            400,
            "negative dimension",
        ),
        (
            "/v2/models/digits/infer",
            '{"inputs":[{"name":"input","shape":[64],"datatype":"BYTES","data":["not base64!"],"parameters":{"content_type":"base64"}}]}',
            400,
            "datatype BYTES but the model expects FP32",
        ),
        # Names are ASCII: one that is not is no model's, and the answer says what names may be.
        ("/v2/models/%D0%BC%D0%BE%D0%B4%D0%B5%D0%BB%D1%8C/infer", "{}", 400, "use ASCII letters, digits"),
    ],
    ids=["nan", "infinity", "10000-inputs", "huge-shape", "negative-shape", "bytes-for-fp32", "unicode-name"],
)
def test_hostile_requests_get_a_4xx_naming_the_problem(
    handler: Handler, path: str, body: str, status: int, message: str
) -> None:
    response = call(handler, "POST", path, body.encode())
    assert response.status == status, response.body
    assert message in json.loads(response.body)["error"]


def test_binary_inputs_and_outputs_travel_outside_the_json(handler: Handler) -> None:
    a = np.array([[1, 2, 3]], dtype=np.float32)
    header = json.dumps(
        {
            "inputs": [
                {"name": "a", "shape": [1, 3], "datatype": "FP32", "parameters": {"binary_data_size": 12}},
                {"name": "b", "shape": [1, 3], "datatype": "FP32", "data": [10, 10, 10]},
            ],
            "outputs": [{"name": "sum", "parameters": {"binary_data": True}}, {"name": "difference"}],
        }
    ).encode()
    response = call(
        handler,
        "POST",
        "/v2/models/sum/infer",
        header + a.tobytes(),
        **{"content-type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status == 200, response.body
    assert response.headers["content-type"] == "application/octet-stream"
    json_length = int(response.headers["inference-header-content-length"])
    answer = json.loads(response.body[:json_length])
    total, difference = answer["outputs"]
    assert total["parameters"] == {"binary_data_size": 12}
    assert np.frombuffer(response.body[json_length:], dtype="<f4").tolist() == [11, 12, 13]
    assert difference["data"] == [-9, -8, -7]


def test_model_names_with_escapes_are_matched_decoded(handler: Handler) -> None:
    response = call(handler, "GET", "/v2/models/%2E%2E%2Fetc/ready")
    assert response.status in (400, 404)
    assert "error" in json.loads(response.body)


def test_an_unexpected_failure_is_a_500_without_a_stack_trace(
    handler: Handler, handler_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_dataplane = handler_module.dataplane

    def explode(*args: object, **kwargs: object) -> None:
        raise KeyError("secret internals")

    monkeypatch.setattr(module_dataplane, "server_metadata", explode)
    response = call(handler, "GET", "/v2")
    assert response.status == 500
    assert json.loads(response.body) == {"error": "internal error (KeyError)"}


def _identity_request(text_input: dict[str, Any]) -> bytes:
    """An identity-model request: `text_input` for in_bytes, two harmless values for every other input."""
    inputs = fakes.identity_inputs(in_bytes=text_input)
    return json.dumps({"inputs": inputs, "outputs": [{"name": "out_bytes"}]}).encode()


@pytest.mark.parametrize("transport", ["base64-json", "binary"])
def test_bytes_that_are_not_utf8_for_a_string_input_get_a_400_naming_the_element(
    handler: Handler, transport: str
) -> None:
    # The identity model's in_bytes is an ONNX string tensor: its text must be UTF-8.
    texts = [b"ok", b"\xff\xfe not text"]
    if transport == "binary":
        raw = b"".join(len(text).to_bytes(4, "little") + text for text in texts)
        header = _identity_request(
            {
                "name": "in_bytes",
                "shape": [2],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        response = call(
            handler,
            "POST",
            "/v2/models/identity/infer",
            header + raw,
            **{
                "content-type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(header)),
            },
        )
    else:
        data = [base64.b64encode(text).decode() for text in texts]
        body = _identity_request(
            {
                "name": "in_bytes",
                "shape": [2],
                "datatype": "BYTES",
                "data": data,
                "parameters": {"content_type": "base64"},
            }
        )
        response = call(handler, "POST", "/v2/models/identity/infer", body)
    assert response.status == 400, response.body
    assert json.loads(response.body) == {
        "error": "input 'in_bytes': BYTES element 1 is not UTF-8 text (byte 0), and the model takes strings"
    }


def test_no_error_body_carries_a_server_path(handler: Handler, model_dir: Path) -> None:
    # ONNX Runtime names the file it failed to load (here under the test's model folder) and,
    # for graph errors, its own source files.
    response = call(handler, "GET", "/v2/models/broken/ready")
    assert response.status == 503, response.body
    error = json.loads(response.body)["error"]
    assert "ONNX Runtime cannot load 'model.onnx'" in error
    assert str(model_dir) not in error and "/tmp/" not in error, error


@pytest.fixture(scope="module")
def shapes_handler(tmp_path_factory: pytest.TempPathFactory) -> Handler:
    """A handler over models whose nodes refuse shapes their signatures accept."""
    root = tmp_path_factory.mktemp("shape-models")
    fakes.unbroadcastable_add_model(root / "add" / "1" / "model.onnx")
    fakes.square_reshape_model(root / "reshape" / "1" / "model.onnx")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MAAS_MODEL_DIR", str(root))
        return load_handler_module(PREDICT_HANDLER).handler


def _fp32_request(**inputs: list[float]) -> bytes:
    return json.dumps(
        {
            "inputs": [
                {"name": name, "shape": [len(data)], "datatype": "FP32", "data": data}
                for name, data in inputs.items()
            ]
        }
    ).encode()


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (
            "add",
            _fp32_request(a=[1, 2, 3], b=[1, 2]),
            "the model cannot run on these inputs: Add node: "
            "Attempting to broadcast an axis by a dimension other than 1. 2 by 3",
        ),
        (
            "reshape",
            _fp32_request(x=[1, 2, 3]),
            "the model cannot run on these inputs: Reshape node: The input tensor cannot be "
            "reshaped to the requested shape. Input shape:{3}, requested shape:{2,2}",
        ),
    ],
    ids=["broadcast", "reshape"],
)
def test_inputs_the_model_cannot_run_on_get_a_400_naming_the_node(
    shapes_handler: Handler, model: str, body: bytes, message: str
) -> None:
    # Both pass the signature checks (every dim is dynamic); ONNX Runtime refuses them at run time.
    response = call(shapes_handler, "POST", f"/v2/models/{model}/infer", body)
    assert response.status == 400, response.body
    assert json.loads(response.body) == {"error": message}


def test_inputs_that_fit_the_model_are_still_answered(shapes_handler: Handler) -> None:
    response = call(shapes_handler, "POST", "/v2/models/add/infer", _fp32_request(a=[1, 2, 3], b=[1]))
    assert response.status == 200, response.body
    assert json.loads(response.body)["outputs"][0]["data"] == [2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    "fault",
    [
        Fail("[ONNXRuntimeError] : 1 : FAIL : Failed to allocate memory for requested buffer of size 64"),
        RuntimeException("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : bad allocation"),
        EPFail("[ONNXRuntimeError] : 11 : EP_FAIL : Non-zero status code returned while running Add node."),
    ],
    ids=["fail", "runtime-exception", "ep-fail"],
)
def test_onnx_runtime_faults_of_its_own_stay_a_500(
    shapes_handler: Handler, monkeypatch: pytest.MonkeyPatch, fault: Exception
) -> None:
    def fails(*args: object, **kwargs: object) -> None:
        raise fault

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", fails)
    response = call(shapes_handler, "POST", "/v2/models/add/infer", _fp32_request(a=[1, 2, 3], b=[1]))
    assert response.status == 500, response.body
    assert json.loads(response.body)["error"].startswith("ONNX Runtime failed: [ONNXRuntimeError]")


def call_with_raw_bytes(
    handler: Handler, method: str, path: str, body: bytes, **headers: str
) -> HttpResponse:
    """`call`, with the body's bytes in the event as they came (base64), even where they are not text."""
    headers.setdefault("content-type", "application/json")
    event = http_api_event(method=method, target=path, headers=headers, body=body)
    event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    return http_response(handler(event, LocalLambdaContext()))


@pytest.mark.parametrize("transport", ["json", "binary"])
def test_a_json_body_that_is_not_utf8_gets_a_400_naming_the_byte(handler: Handler, transport: str) -> None:
    # Before, the bytes reached the model as U+FFFD and the request was answered 200 with "��".
    text = {"name": "in_bytes", "shape": [1], "datatype": "BYTES", "data": ["@@"]}
    body = _identity_request(text).replace(b"@@", b"\xff\xfe")
    offset = body.index(b"\xff")
    headers = {}
    if transport == "binary":
        headers = {"Inference-Header-Content-Length": str(len(body))}
    response = call_with_raw_bytes(handler, "POST", "/v2/models/identity/infer", body, **headers)
    assert response.status == 400, response.body
    assert json.loads(response.body) == {
        "error": f"the request body is not UTF-8: byte {offset} (0xff) cannot be decoded; a JSON body must be UTF-8"
    }
