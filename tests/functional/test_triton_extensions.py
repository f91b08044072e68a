"""What Triton and KServe clients ask a server first, answered by the predict handler in the
shapes of Triton's extensions: the repository index, model statistics, model configuration.

Every answer is also parsed with Triton's own protobuf schemas (as `tritonclient.grpc` would
read them), so a field Triton does not know, or of the wrong type, fails here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2, service_pb2

import maas.registry.source
from maas.dataplane import DataPlane
from maas.local.context import LocalLambdaContext
from maas.local.events import HttpResponse, http_api_event, http_response
from maas.local.gateway import load_handler_module
from maas.protocol import InferenceRequest
from maas.protocol.triton import ModelState
from maas.registry import Registry, RegistrySource
from tests import fakes
from tests.conftest import PREDICT_HANDLER

SUM_ROW = {"shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}
SUM_BODY = json.dumps({"inputs": [{"name": "a", **SUM_ROW}, {"name": "b", **SUM_ROW}]})
# The wrong shape for `b`: refused by the data plane after it resolved the model, a failed inference.
SUM_WRONG_SHAPE = json.dumps(
    {"inputs": [{"name": "a", **SUM_ROW}, {"name": "b", **SUM_ROW, "shape": [3, 1]}]}
)
LOOP_TRIPS = 300_000  # about a microsecond each: a request that takes a measurable time


@pytest.fixture
def handler_module(model_dir: Path, tmp_path: Path) -> ModuleType:
    """A fresh cold start per test, so that counts start at zero; `looping` beside the models."""
    models = tmp_path / "models"
    models.mkdir()
    for entry in model_dir.iterdir():
        (models / entry.name).symlink_to(entry)
    fakes.looping_model(models / "looping" / "1" / "model.onnx")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MAAS_MODEL_DIR", str(models))
        return load_handler_module(PREDICT_HANDLER)


def call(module: ModuleType, method: str, path: str, body: str | bytes = b"") -> HttpResponse:
    payload = body.encode() if isinstance(body, str) else body
    event = http_api_event(
        method=method, target=path, headers={"content-type": "application/json"}, body=payload
    )
    return http_response(module.handler(event, LocalLambdaContext()))


def answer(module: ModuleType, method: str, path: str, body: str | bytes = b"", status: int = 200) -> Any:
    response = call(module, method, path, body)
    assert response.status == status, response.body
    assert response.headers["content-type"] == "application/json"
    return json.loads(response.body)


def stats_of(module: ModuleType, path: str) -> dict[str, Any]:
    body = answer(module, "GET", path)
    json_format.ParseDict(body, service_pb2.ModelStatisticsResponse())
    (stats,) = body["model_stats"]
    return stats  # type: ignore[no-any-return]


def test_two_successes_and_one_failure_count_as_two_inferences_and_one_failure(
    handler_module: ModuleType,
) -> None:
    before = time.time() * 1000
    for body in (SUM_BODY, SUM_WRONG_SHAPE, SUM_BODY):
        call(handler_module, "POST", "/v2/models/sum/infer", body)
    stats = stats_of(handler_module, "/v2/models/sum/versions/2/stats")
    assert (stats["name"], stats["version"]) == ("sum", "2")
    assert stats["inference_count"] == stats["execution_count"] == 2
    counted = stats["inference_stats"]
    assert counted["success"]["count"] == 2
    assert counted["fail"]["count"] == 1
    assert counted["fail"]["ns"] > 0
    for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
        assert counted[phase]["count"] == 2, phase
    assert stats["batch_stats"] == []
    assert before <= stats["last_inference"] <= time.time() * 1000


def test_a_model_without_a_version_gets_the_statistics_of_every_version(handler_module: ModuleType) -> None:
    call(handler_module, "POST", "/v2/models/sum/versions/1/infer", SUM_BODY)
    body = answer(handler_module, "GET", "/v2/models/sum/stats")
    json_format.ParseDict(body, service_pb2.ModelStatisticsResponse())
    counts = {stats["version"]: stats["inference_count"] for stats in body["model_stats"]}
    assert counts == {"1": 1, "2": 0}
    assert next(s for s in body["model_stats"] if s["version"] == "2")["last_inference"] == 0


def test_durations_are_the_measured_time_of_each_request(handler_module: ModuleType) -> None:
    body = json.dumps({"inputs": [{"name": "trips", "shape": [], "datatype": "INT64", "data": [LOOP_TRIPS]}]})
    call(handler_module, "POST", "/v2/models/looping/infer", body)  # loads the model
    started = time.perf_counter_ns()
    response = call(handler_module, "POST", "/v2/models/looping/infer", body)
    wall = time.perf_counter_ns() - started
    assert response.status == 200, response.body
    counted = stats_of(handler_module, "/v2/models/looping/versions/1/stats")["inference_stats"]
    phases = sum(
        counted[phase]["ns"] for phase in ("queue", "compute_input", "compute_infer", "compute_output")
    )
    # Two requests, the second timed from outside: the model's run is most of it.
    assert counted["success"]["ns"] >= phases
    assert counted["compute_infer"]["ns"] >= wall / 2
    assert counted["success"]["ns"] <= counted["compute_infer"]["ns"] + wall


def test_an_unknown_model_or_version_is_not_counted(handler_module: ModuleType) -> None:
    assert call(handler_module, "POST", "/v2/models/nothing/infer", SUM_BODY).status == 404
    assert call(handler_module, "POST", "/v2/models/sum/versions/9/infer", SUM_BODY).status == 404
    assert call(handler_module, "POST", "/v2/models/sum/versions/2/infer", b"not json").status == 400
    assert (
        stats_of(handler_module, "/v2/models/sum/versions/2/stats")["inference_stats"]["fail"]["count"] == 0
    )


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v2/models/nothing/stats", 404, "model 'nothing' not found"),
        ("/v2/models/sum/versions/9/stats", 404, "model 'sum' version '9' not found"),
        ("/v2/models/sum/versions/a..b/stats", 400, "is not valid"),
        ("/v2/models/nothing/config", 404, "model 'nothing' not found"),
        ("/v2/models/sum/versions/9/config", 404, "model 'sum' version '9' not found"),
        ("/v2/models/broken/config", 503, "model 'broken' version '1' is not ready"),
        ("/v2/models/%D0%BC/stats", 400, "use ASCII letters"),
    ],
)
def test_statistics_and_configuration_of_what_cannot_be_served_name_the_problem(
    handler_module: ModuleType, path: str, status: int, message: str
) -> None:
    assert message in answer(handler_module, "GET", path, status=status)["error"]


def test_the_configuration_has_the_model_signature_in_triton_terms(handler_module: ModuleType) -> None:
    config = answer(handler_module, "GET", "/v2/models/digits/config")
    json_format.ParseDict(config, model_config_pb2.ModelConfig())  # no field Triton does not know
    metadata = answer(handler_module, "GET", "/v2/models/digits")
    assert (config["name"], config["platform"], config["backend"]) == (
        "digits",
        "onnxruntime_onnx",
        "onnxruntime",
    )
    assert config["max_batch_size"] == 0  # so `dims` hold the batch dimension: full shapes
    for kind, tensors in (("input", "inputs"), ("output", "outputs")):
        assert [(t["name"], t["data_type"], t["dims"]) for t in config[kind]] == [
            (t["name"], f"TYPE_{t['datatype']}", t["shape"]) for t in metadata[tensors]
        ]
    assert config["input"] == [{"name": "input", "data_type": "TYPE_FP32", "dims": [-1, 64]}]
    tflite = answer(handler_module, "GET", "/v2/models/digits-tflite/versions/1/config")
    assert (tflite["platform"], tflite["backend"]) == ("tensorflow_lite", "tflite")


def test_every_datatype_has_its_triton_name_bytes_being_type_string(handler_module: ModuleType) -> None:
    config = answer(handler_module, "GET", "/v2/models/identity/config")
    parsed = json_format.ParseDict(config, model_config_pb2.ModelConfig())
    types = {tensor.name: model_config_pb2.DataType.Name(tensor.data_type) for tensor in parsed.input}
    assert types["in_bytes"] == "TYPE_STRING"
    assert types["in_fp16"] == "TYPE_FP16"
    assert len(types) == 13 and "TYPE_INVALID" not in types.values()


def index(module: ModuleType, body: str | bytes = b"") -> dict[str, dict[str, Any]]:
    entries = answer(module, "POST", "/v2/repository/index", body)
    json_format.ParseDict({"models": entries}, service_pb2.RepositoryIndexResponse())
    return {entry["name"]: entry for entry in entries}


def test_the_repository_index_lists_every_model_and_whether_it_is_ready(handler_module: ModuleType) -> None:
    listed = index(handler_module)
    assert list(listed) == sorted(listed)
    assert listed["digits"] == {"name": "digits", "version": "1", "state": "READY", "reason": ""}
    assert listed["digits-tflite"]["state"] == "READY"
    assert listed["sum"]["version"] == "2"  # what the model's route serves: the highest version
    assert listed["broken"]["state"] == "UNAVAILABLE"
    assert "model 'broken' version '1' is not ready" in listed["broken"]["reason"]
    ready = index(handler_module, '{"ready": true}')
    assert "broken" not in ready
    assert set(ready) == set(listed) - {"broken"}
    assert index(handler_module, '{"ready": false}') == listed == index(handler_module, "{}")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "invalid repository index request: Invalid JSON"),
        (b"[true]", "invalid repository index request: Input should be an object"),
        (b'{"ready": "yes"}', "ready: Input should be a valid boolean"),
        (b'{"ready": 1}', "ready: Input should be a valid boolean"),
        (b"\xff", "the request body is not UTF-8"),
    ],
)
def test_a_repository_index_request_that_is_not_one_gets_a_400(
    handler_module: ModuleType, body: bytes, message: str
) -> None:
    assert message in answer(handler_module, "POST", "/v2/repository/index", body, status=400)["error"]


def test_the_server_metadata_names_the_extensions_it_serves(handler_module: ModuleType) -> None:
    extensions = answer(handler_module, "GET", "/v2")["extensions"]
    assert {"statistics", "model_configuration"} <= set(extensions)
    assert "model_repository" not in extensions  # no load or unload


def test_the_registry_index_pages_through_every_model_and_says_which_has_no_prod(
    registry: Registry, artifacts: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maas.registry.source, "MAX_PAGE", 2)  # three models: two pages
    for name in ("gamma", "alpha", "beta"):
        registry.register(name, artifacts["sum"])
    registry.promote("alpha", "prod", 1)
    registry.promote("beta", "prod", 1)
    plane = DataPlane(RegistrySource(registry, cache_dir=tmp_path))
    listed = plane.repository_index().root
    assert [(e.name, e.version, e.state) for e in listed] == [
        ("alpha", "1", ModelState.READY),
        ("beta", "1", ModelState.READY),
        ("gamma", None, ModelState.UNAVAILABLE),
    ]
    assert listed[2].reason == "alias 'prod' of model 'gamma' not found"
    assert [e.name for e in plane.repository_index(ready_only=True).root] == ["alpha", "beta"]
    request = InferenceRequest.model_validate_json(SUM_BODY)
    plane.infer("alpha", request)
    counts = plane.model_statistics("alpha").model_stats
    assert [(s.version, s.inference_count) for s in counts] == [("1", 1)]
