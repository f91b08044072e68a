"""What a SageMaker-served version does when called as any other runtime: `predict` answers the
endpoint's outputs (callers that need not know which variant answered), and it is never loaded
from a file in this process."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from maas.errors import ArtifactError, InferenceError, InvalidInput, ModelNotReady
from maas.protocol import Datatype
from maas.runtimes.base import Signature, TensorSpec
from maas.runtimes.sagemaker import SageMakerRuntime, runtime_client

SIGNATURE = Signature(
    inputs=(TensorSpec("a", Datatype.FP32, (-1, 3)),), outputs=(TensorSpec("sum", Datatype.FP32, (-1, 3)),)
)


class Endpoint:
    """InvokeEndpoint of a Triton endpoint that doubles `a`, answering from variant v2."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.sent.append(request)
        (tensor,) = json.loads(request["Body"])["inputs"]
        doubled = [2 * value for value in tensor["data"]]
        answer = {"outputs": [{"name": "sum", "datatype": "FP32", "shape": tensor["shape"], "data": doubled}]}
        return {"Body": io.BytesIO(json.dumps(answer).encode()), "InvokedProductionVariant": "v2"}


def test_predict_answers_the_outputs_of_the_variant_it_targets() -> None:
    endpoint = Endpoint()
    runtime = SageMakerRuntime(endpoint="maas-large", variant="v2", signature=SIGNATURE, client=endpoint)
    outputs = runtime.predict({"a": np.array([[1.0, 2.0, 3.0]], dtype=np.float32)})
    assert list(outputs) == ["sum"]
    assert outputs["sum"].tolist() == [[2.0, 4.0, 6.0]]
    assert (endpoint.sent[0]["EndpointName"], endpoint.sent[0]["TargetVariant"]) == ("maas-large", "v2")


def test_a_sagemaker_version_is_never_loaded_from_a_file_here() -> None:
    with pytest.raises(
        ArtifactError, match=r"^'model\.onnx' belongs to a SageMaker endpoint; it is not loaded"
    ):
        SageMakerRuntime.load(Path("/models/large/1/model.onnx"))


class Answering:
    """An endpoint that answers `payload` to every request, or raises `error`."""

    def __init__(self, payload: Any = None, error: Exception | None = None) -> None:
        self.payload, self.error = payload, error

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return {"Body": io.BytesIO(json.dumps(self.payload).encode()), "InvokedProductionVariant": "v1"}


def predict_with(client: Any) -> dict[str, np.ndarray]:
    runtime = SageMakerRuntime(endpoint="maas-large", variant="v1", signature=SIGNATURE, client=client)
    return runtime.predict({"a": np.zeros((1, 3), dtype=np.float32)})


@pytest.mark.parametrize("payload", [{}, {"outputs": []}, {"outputs": ["sum"]}])
def test_an_answer_without_the_output_the_signature_names_is_an_inference_error_naming_it(
    payload: Any,
) -> None:
    with pytest.raises(InferenceError) as caught:
        predict_with(Answering(payload))
    assert caught.value.message == "SageMaker endpoint 'maas-large' answered without output 'sum'"


def test_an_output_that_is_not_an_oip_tensor_is_an_inference_error_naming_it() -> None:
    payload = {"outputs": [{"name": "sum", "datatype": "FLOAT", "shape": [1, 3], "data": [1, 2, 3]}]}
    with pytest.raises(InferenceError) as caught:
        predict_with(Answering(payload))
    assert caught.value.message.startswith(
        "SageMaker endpoint 'maas-large' sent an output 'sum' that is not OIP: "
    )


def model_error(original: str, status: int = 400) -> ClientError:
    response = {
        "Error": {"Code": "ModelError", "Message": "Received client error (400) from primary"},
        "OriginalStatusCode": status,
        "OriginalMessage": original,
    }
    return ClientError(response, "InvokeEndpoint")


@pytest.mark.parametrize(
    ("original", "passed_on"),
    [
        ('{"error": "unexpected shape for input \'a\'"}', "unexpected shape for input 'a'"),
        ("[1, 2]", "[1, 2]"),
        ('{"detail": "no error field"}', '{"detail": "no error field"}'),
        ('{"error": ""}', '{"error": ""}'),
        ("not json at all", "not json at all"),
    ],
    ids=["triton-error", "a-json-array", "no-error-field", "an-empty-error", "plain-text"],
)
def test_a_request_triton_refuses_passes_on_tritons_words_or_the_whole_answer(
    original: str, passed_on: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        predict_with(Answering(error=model_error(original)))
    assert caught.value.message == f"SageMaker endpoint 'maas-large' refused the request: {passed_on}"


def test_the_runtime_client_gives_up_on_an_endpoint_after_65_s_and_on_a_connection_after_5() -> None:
    """SageMaker answers within 60 s or not at all; waiting longer only holds the function."""
    config = runtime_client()._client_config
    assert (config.read_timeout, config.connect_timeout) == (65, 5)


def test_a_triton_failure_of_its_own_is_an_inference_error_not_a_refusal() -> None:
    with pytest.raises(InferenceError) as caught:
        predict_with(Answering(error=model_error('{"error": "CUDA out of memory"}', status=500)))
    assert caught.value.message == "SageMaker endpoint 'maas-large' failed: CUDA out of memory"


def test_a_variant_the_endpoint_does_not_have_says_how_to_deploy_it() -> None:
    missing = {"Error": {"Code": "ValidationError", "Message": "Variant v1 not found"}}
    with pytest.raises(ModelNotReady) as caught:
        predict_with(Answering(error=ClientError(missing, "InvokeEndpoint")))
    assert caught.value.message == (
        "SageMaker endpoint 'maas-large' cannot serve variant 'v1': Variant v1 not found "
        "(promote the version with `maas models promote` to deploy it)"
    )


def test_a_request_is_sent_and_read_as_json() -> None:
    endpoint = Endpoint()
    SageMakerRuntime(endpoint="maas-large", variant="v2", signature=SIGNATURE, client=endpoint).predict(
        {"a": np.ones((1, 3), dtype=np.float32)}
    )
    assert (endpoint.sent[0]["ContentType"], endpoint.sent[0]["Accept"]) == (
        "application/json",
        "application/json",
    )


def test_an_endpoint_that_does_not_answer_is_unavailable_naming_it() -> None:
    from botocore.exceptions import EndpointConnectionError

    from maas.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable) as caught:
        predict_with(Answering(error=EndpointConnectionError(endpoint_url="https://runtime.sagemaker")))
    assert caught.value.message.startswith(
        "SageMaker endpoint 'maas-large' did not answer: Could not connect"
    )


def test_an_answer_that_is_not_json_is_an_inference_error_naming_the_endpoint() -> None:
    class Garbled:
        def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
            return {"Body": io.BytesIO(b"<html>busy</html>"), "InvokedProductionVariant": "v1"}

    with pytest.raises(InferenceError) as caught:
        predict_with(Garbled())
    assert caught.value.message.startswith("SageMaker endpoint 'maas-large' answered with invalid JSON: ")


def test_an_answer_that_names_no_variant_reports_no_version() -> None:
    class Anonymous(Endpoint):
        def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
            answer = super().invoke_endpoint(**request)
            del answer["InvokedProductionVariant"]
            return answer

    runtime = SageMakerRuntime(endpoint="maas-large", variant="v2", signature=SIGNATURE, client=Anonymous())
    outputs, answered_by = runtime.predict_served({"a": np.ones((1, 3), dtype=np.float32)})
    assert (outputs["sum"].tolist(), answered_by) == ([[2.0, 2.0, 2.0]], None)


def test_a_failure_of_another_kind_names_the_endpoint_its_code_and_message() -> None:
    error = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "InvokeEndpoint"
    )
    with pytest.raises(InferenceError) as caught:
        predict_with(Answering(error=error))
    assert (
        caught.value.message
        == "SageMaker endpoint 'maas-large' failed: AccessDeniedException: not authorized"
    )
    assert "maas-large" in caught.value.message
