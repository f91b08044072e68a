"""A registered model is untrusted, and so is the client: whatever shape or trip count a request
chooses, one request allocates at most its budget, runs at most until its deadline, and the
model answers the next request as before."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from maas.dataplane import DataPlane
from maas.errors import BudgetExceeded, DeadlineExceeded, ModelNotReady
from maas.protocol import InferenceRequest
from maas.runtimes import load_runtime
from maas.runtimes.budget import MB, Limits
from maas.sources import DirectorySource
from tests import fakes

# ONNX Runtime's arena is one per process, so every test of this process that bounds memory
# uses this one budget: small, so that a hostile request is refused before it allocates much.
BUDGET_MB = 128
LIMITS = Limits(memory_bytes=BUDGET_MB * MB, deadline_seconds=1.0)


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    fakes.filled_model(root / "filled" / "1" / "model.onnx")
    fakes.expanded_model(root / "expanded" / "1" / "model.onnx")
    fakes.looping_model(root / "looping" / "1" / "model.onnx")
    return root


@pytest.fixture
def plane(hostile_dir: Path) -> DataPlane:
    return DataPlane(DirectorySource(hostile_dir), limits=LIMITS)


def shape_request(rows: int, cols: int, *, binary: bool = False) -> InferenceRequest:
    body: dict[str, object] = {
        "inputs": [{"name": "shape", "shape": [2], "datatype": "INT64", "data": [rows, cols]}]
    }
    if binary:
        body["outputs"] = [{"name": "filled", "parameters": {"binary_data": True}}]
    return InferenceRequest.model_validate(body)


def trips_request(trips: int) -> InferenceRequest:
    return InferenceRequest.model_validate(
        {"inputs": [{"name": "trips", "shape": [], "datatype": "INT64", "data": [trips]}]}
    )


@pytest.mark.parametrize("model", ["filled", "expanded"])
def test_a_shape_the_client_chose_past_the_request_budget_is_refused_at_once(
    plane: DataPlane, model: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(BudgetExceeded) as refused:
        plane.infer(model, shape_request(8192, 16384))  # 512 MB of ones
    assert time.perf_counter() - started < 1.0
    assert refused.value.status == 507
    assert refused.value.message == (
        f"model '{model}' version '1' asked for 512 MB at once, "
        f"more than the {BUDGET_MB} MB one request may allocate (MAAS_REQUEST_MEMORY_MB)"
    )
    assert plane.infer(model, shape_request(2, 3)).response.outputs[0].data == [1.0] * 6


def test_a_shape_within_the_budget_is_served(plane: DataPlane) -> None:
    result = plane.infer("filled", shape_request(1024, 16384, binary=True))  # 64 MB
    assert len(result.binary[0]) == 64 * MB


def test_a_loop_with_a_trip_count_the_client_chose_is_stopped_at_the_deadline(plane: DataPlane) -> None:
    started = time.perf_counter()
    with pytest.raises(DeadlineExceeded) as stopped:
        plane.infer("looping", trips_request(10**12))  # days of trips
    elapsed = time.perf_counter() - started
    assert 1.0 <= elapsed < 2.0, elapsed
    assert stopped.value.status == 504
    assert stopped.value.message == (
        "model 'looping' version '1' ran past the 1 s deadline of a request "
        "(MAAS_REQUEST_TIMEOUT_SECONDS) and was stopped"
    )
    assert plane.infer("looping", trips_request(1000)).response.outputs[0].data == [1000.0]


def test_each_request_has_its_own_deadline(plane: DataPlane) -> None:
    """A runaway request beside a quick one: only the runaway one is stopped."""
    outcome: dict[str, object] = {}

    def runaway() -> None:
        try:
            plane.infer("looping", trips_request(10**12))
        except DeadlineExceeded as error:
            outcome["runaway"] = error

    thread = threading.Thread(target=runaway)
    thread.start()
    time.sleep(0.2)
    quick = [plane.infer("looping", trips_request(100_000)).response.outputs[0].data for _ in range(3)]
    thread.join(timeout=5)
    assert quick == [[100_000.0]] * 3
    assert isinstance(outcome["runaway"], DeadlineExceeded)


def test_outputs_too_large_for_a_response_are_refused_before_they_are_encoded(hostile_dir: Path) -> None:
    plane = DataPlane(DirectorySource(hostile_dir), limits=LIMITS, max_response_bytes=1 * MB)
    with pytest.raises(BudgetExceeded, match="a response") as refused:
        plane.infer("filled", shape_request(1024, 1024))  # a million elements: at least 2 MB of JSON
    assert refused.value.message == (
        "model 'filled' version '1' answered with outputs of at least 2.0 MB, "
        "more than the 1 MB a response may carry (MAAS_MAX_RESPONSE_MB)"
    )
    with pytest.raises(BudgetExceeded, match=r"at least 4\.0 MB"):
        plane.infer("filled", shape_request(1024, 1024, binary=True))
    assert len(plane.infer("filled", shape_request(256, 256, binary=True)).binary[0]) == 256 * 1024


def test_a_model_larger_than_the_function_keeps_for_models_is_not_loaded(tmp_path: Path) -> None:
    fakes.weighty_model(tmp_path / "weighty" / "1" / "model.onnx", 3)
    plane = DataPlane(DirectorySource(tmp_path), limits=Limits(model_bytes=2 * MB), cache_bytes=2 * MB)
    with pytest.raises(ModelNotReady) as refused:
        plane.model_ready("weighty")
    assert refused.value.message == (
        "model 'weighty' version '1' is not ready: 'model.onnx' is 3.0 MB, "
        "more than the 2 MB this function keeps for models (MAAS_CACHE_MEMORY_MB)"
    )


def test_tflite_refuses_shapes_whose_tensors_pass_the_budget_and_still_answers(
    model_dir: Path, digits_test_rows: tuple
) -> None:
    features, labels = digits_test_rows
    runtime = load_runtime(
        model_dir / "digits-tflite" / "1" / "model.tflite", limits=Limits(memory_bytes=256 * 1024)
    )
    big = np.zeros((4096, 64), dtype=np.float32)  # about 0.5 MB of planned tensors
    with pytest.raises(BudgetExceeded, match=r"needs more tensors for these shapes than the 0\.25 MB"):
        runtime.predict({"input": big})
    assert (runtime.predict({"input": features[:100]})["label"] == labels[:100]).mean() > 0.8


def test_tflite_gives_up_at_the_deadline_while_the_interpreter_is_busy(model_dir: Path) -> None:
    """TFLite cannot be stopped mid-run; a request waiting behind a busy one stops waiting."""
    runtime = load_runtime(
        model_dir / "digits-tflite" / "1" / "model.tflite", limits=Limits(deadline_seconds=0.2)
    )
    with runtime._lock:  # type: ignore[attr-defined]  # as a long invoke holds it
        started = time.perf_counter()
        with pytest.raises(DeadlineExceeded, match=r"waited for the model past the 0.2 s deadline"):
            runtime.predict({"input": np.zeros((1, 64), dtype=np.float32)})
        assert time.perf_counter() - started < 1.0
    assert runtime.predict({"input": np.zeros((1, 64), dtype=np.float32)})["label"].shape == (1,)
