"""A model too large for Lambda, on a SageMaker endpoint: registered and packed for Triton,
promoted blue/green through `maas models`, and served through the same OIP API, against
moto's SageMaker (with the UpdateEndpoint it lacks, from maas.local.moto.sagemaker)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.awsrequest import AWSResponse
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from maas.cli import main
from maas.dataplane import DataPlane
from maas.http.resolver import build_predict_app
from maas.local.context import LocalLambdaContext
from maas.local.events import HttpResponse, http_api_event, http_response
from maas.registry import Registry, RegistrySource
from maas.runtimes.sagemaker import runtime_client
from maas.sagemaker.endpoint import EndpointDeployer
from tests.functional.conftest import aws_client, reconciler_on_stream
from tests.sagemaker_stack import ROLE, deploy_like_the_stack, scaled_variants

A, B = [[1.0, 2.0, 3.0]], [[10.0, 20.0, 30.0]]


def models_cli(
    capsys: pytest.CaptureFixture[str], registry: Registry, endpoint: str, *args: str
) -> tuple[int, str]:
    table = registry.store.table_name  # type: ignore[attr-defined]
    if args[0] in ("promote", "canary", "rollback"):
        args = (*args, "--wait", "30")  # the reconciler on the table's stream moves the endpoint
    code = main(
        ["models", "--endpoint-url", endpoint, "--table", table, "--bucket", registry.artifacts.bucket,
         "--endpoint-prefix", "maas", *args]
    )  # fmt: skip
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def large(
    dynamo_registry: Registry,
    artifacts: dict[str, Path],
    aws_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Registry]:
    """Model `large` (the sum model) registered twice with target sagemaker through the CLI,
    with the reconciler on the registry's stream."""
    for _ in range(2):
        code, out = models_cli(
            capsys, dynamo_registry, aws_endpoint, "register", "large", str(artifacts["sum"]), "--target", "sagemaker",
            "--max-batch-size", "64", "--preferred-batch-size", "16", "--max-queue-delay-us", "250",
        )  # fmt: skip
        assert code == 0, out
    assert "packed large v2 for Triton" in out
    with reconciler_on_stream(dynamo_registry, aws_endpoint):
        yield dynamo_registry


def test_registering_packs_a_triton_repository_in_the_models_artifact_prefix(large: Registry) -> None:
    s3 = large.artifacts.client
    body = s3.get_object(Bucket=large.artifacts.bucket, Key="artifacts/large/v1/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert sorted(archive.getnames()) == ["large/1/model.onnx", "large/config.pbtxt"]
        text = archive.extractfile("large/config.pbtxt").read().decode()  # type: ignore[union-attr]
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.max_batch_size == 64
    assert list(config.dynamic_batching.preferred_batch_size) == [16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 250
    assert [(t.name, list(t.dims)) for t in config.input] == [("a", [3]), ("b", [3])]


def test_a_tflite_file_cannot_target_sagemaker(
    capsys: pytest.CaptureFixture[str],
    dynamo_registry: Registry,
    artifacts: dict[str, Path],
    aws_endpoint: str,
) -> None:
    code, out = models_cli(
        capsys,
        dynamo_registry,
        aws_endpoint,
        "register",
        "small",
        str(artifacts["tflite"]),
        "--target",
        "sagemaker",
    )
    assert code != 0
    assert "must be an .onnx file" in out


def test_promotion_moves_the_endpoint_to_a_new_config_blue_green_and_rollback_returns(
    capsys: pytest.CaptureFixture[str], large: Registry, aws_endpoint: str
) -> None:
    endpoint = deploy_like_the_stack(aws_endpoint, large.artifacts.bucket, "large", 1)
    sagemaker = aws_client("sagemaker", aws_endpoint)
    assert models_cli(capsys, large, aws_endpoint, "promote", "large", "1")[0] == 0
    first = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]

    code, out = models_cli(capsys, large, aws_endpoint, "promote", "large", "2")
    assert code == 0, out
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointConfigName"] != first
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["v2"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    (variant,) = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.g5.xlarge", 1)
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["ModelDataUrl"].endswith("/artifacts/large/v2/model.tar.gz")
    assert model["ExecutionRoleArn"] == ROLE
    # The config it left stays, for rollback; autoscaling moved with the variant.
    sagemaker.describe_endpoint_config(EndpointConfigName=first)
    assert scaled_variants(aws_endpoint, endpoint) == {"v2": (1, 4)}
    assert "blue/green" in out

    code, out = models_cli(capsys, large, aws_endpoint, "rollback", "large")
    assert code == 0, out
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == first
    assert "re-using endpoint config" in out
    assert scaled_variants(aws_endpoint, endpoint) == {"v1": (1, 4)}

    code, out = models_cli(capsys, large, aws_endpoint, "--json", "endpoint", "large")
    status = json.loads(out[: out.rindex("}") + 1])
    assert status["status"] == "InService"
    assert [(v["name"], v["version"]) for v in status["variants"]] == [("v1", 1)]


def test_a_canary_alias_becomes_two_weighted_variants(
    capsys: pytest.CaptureFixture[str], large: Registry, aws_endpoint: str
) -> None:
    endpoint = deploy_like_the_stack(aws_endpoint, large.artifacts.bucket, "large", 1)
    assert models_cli(capsys, large, aws_endpoint, "promote", "large", "1")[0] == 0
    code, out = models_cli(capsys, large, aws_endpoint, "canary", "large", "1=90", "2=10")
    assert code == 0, out
    variants = aws_client("sagemaker", aws_endpoint).describe_endpoint(EndpointName=endpoint)[
        "ProductionVariants"
    ]
    assert {v["VariantName"]: v["CurrentWeight"] for v in variants} == {"v1": 90.0, "v2": 10.0}
    assert scaled_variants(aws_endpoint, endpoint) == {"v1": (1, 4), "v2": (1, 4)}


def test_an_alias_the_endpoint_does_not_follow_leaves_it_alone(large: Registry, aws_endpoint: str) -> None:
    endpoint = deploy_like_the_stack(aws_endpoint, large.artifacts.bucket, "large", 1)
    sagemaker = aws_client("sagemaker", aws_endpoint)
    before = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    deployer = EndpointDeployer(
        large,
        prefix="maas",
        sagemaker=sagemaker,
        autoscaling=aws_client("application-autoscaling", aws_endpoint),
    )
    assert deployer.sync(large.promote("large", "staging", 2)) is None
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == before


# Serving through the OIP API


def oip(app: Any, method: str, path: str, body: Any = None) -> HttpResponse:
    payload = json.dumps(body).encode() if body is not None else b""
    event = http_api_event(
        method=method, target=path, headers={"content-type": "application/json"}, body=payload
    )
    return http_response(app.resolve(event, LocalLambdaContext()))


def api(registry: Registry, tmp_path: Path, client: Any) -> Any:
    source = RegistrySource(registry, cache_dir=tmp_path, endpoint_prefix="maas", sagemaker_client=client)
    return build_predict_app(DataPlane(source))


def moto_answers(endpoint_url: str, *bodies: dict[str, Any], variant: str = "v1") -> None:
    """Queue what moto's InvokeEndpoint returns, answered by `variant`, in order (moto cannot run Triton)."""
    results = [
        {"Body": json.dumps(body), "ContentType": "application/json", "InvokedProductionVariant": variant}
        for body in bodies
    ]
    requests.post(
        f"{endpoint_url}/moto-api/static/sagemaker/endpoint-results", json={"results": results}, timeout=10
    )


def counting_client(
    endpoint_url: str, answer: Any = None, max_attempts: int = 3
) -> tuple[Any, list[dict[str, Any]]]:
    """A sagemaker-runtime client whose calls are recorded and, if `answer` is given, answered
    by it at the HTTP layer, so that botocore's own retries run as they would against AWS."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "sagemaker-runtime", endpoint_url=endpoint_url, region_name="us-east-1",
        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}),
    )  # fmt: skip
    return client, recorded_calls(client, answer)


def recorded_calls(client: Any, answer: Any = None) -> list[dict[str, Any]]:
    """Record `client`'s InvokeEndpoint calls, answered by `answer` if it is given."""
    calls: list[dict[str, Any]] = []

    def record(request: Any, **_: Any) -> AWSResponse | None:
        calls.append({"url": request.url, "headers": dict(request.headers)})
        return answer() if answer is not None else None

    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", record)
    return calls


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def aws_error(status: int, code: str, message: str, **fields: Any) -> Any:
    def answer() -> AWSResponse:
        body = json.dumps({"__type": code, "message": message, **fields}).encode()
        return AWSResponse("https://runtime.sagemaker", status, {"x-amzn-ErrorType": code}, _Raw(body))

    return answer


SUM_REQUEST = {
    "inputs": [
        {"name": "a", "datatype": "FP32", "shape": [1, 3], "data": A[0]},
        {"name": "b", "datatype": "FP32", "shape": [1, 3], "data": B[0]},
    ]
}


def test_infer_goes_through_the_oip_api_to_the_endpoint_and_its_answer_comes_back(
    large: Registry, aws_endpoint: str, tmp_path: Path
) -> None:
    large.promote("large", "prod", 2)
    answer = {
        "model_name": "large",
        "model_version": "1",
        "outputs": [
            {"name": "sum", "datatype": "FP32", "shape": [1, 3], "data": [11.5, 22.5, 33.5]},
            {"name": "difference", "datatype": "FP32", "shape": [1, 3], "data": [-9.0, -18.0, -27.0]},
        ],
    }
    moto_answers(aws_endpoint, answer, variant="v2")
    client, calls = counting_client(aws_endpoint)
    app = api(large, tmp_path, client)
    request = {
        "id": "r-1",
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [1, 3], "data": A[0]},
            {"name": "b", "datatype": "FP32", "shape": [1, 3], "data": B[0]},
        ],
    }
    response = oip(app, "POST", "/v2/models/large/infer", request)
    assert response.status == 200, response.body
    body = json.loads(response.body)
    assert (body["model_name"], body["model_version"], body["id"]) == ("large", "2", "r-1")
    # The endpoint's numbers pass through untouched (moto answers what it was told to).
    assert body["outputs"] == answer["outputs"]
    (call,) = calls
    assert "/endpoints/maas-large/invocations" in call["url"]
    assert call["headers"]["X-Amzn-SageMaker-Target-Variant"] in ("v2", b"v2")


def test_metadata_comes_from_the_registry_without_calling_the_endpoint(
    large: Registry, aws_endpoint: str, tmp_path: Path
) -> None:
    large.promote("large", "prod", 1)
    client, calls = counting_client(aws_endpoint)
    app = api(large, tmp_path, client)
    response = oip(app, "GET", "/v2/models/large")
    assert response.status == 200
    metadata = json.loads(response.body)
    assert metadata["platform"] == "onnxruntime_onnx"
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]] == [
        ("a", "FP32", [-1, 3]),
        ("b", "FP32", [-1, 3]),
    ]
    assert oip(app, "GET", "/v2/models/large/ready").status == 200
    # Bad input is refused against the registry's signature before any call.
    bad = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    assert oip(app, "POST", "/v2/models/large/infer", bad).status == 400
    assert calls == []


@dataclass(frozen=True)
class EndpointFailure:
    status: int
    code: str
    message: str
    expected_status: int
    expected: str
    attempts: int


@pytest.mark.parametrize(
    "case",
    [
        EndpointFailure(
            400, "ThrottlingException", "Rate exceeded", 503, "is busy (ThrottlingException, 3 attempts", 3
        ),
        EndpointFailure(
            503, "ServiceUnavailable", "try later", 503, "is busy (ServiceUnavailable, 3 attempts", 3
        ),
        EndpointFailure(400, "ValidationError", "Variant v1 not found", 503, "cannot serve variant 'v1'", 1),
        EndpointFailure(424, "ModelError", "Received server error (500) from primary", 500, "failed", 1),
    ],
    ids=lambda case: case.code,
)
def test_endpoint_errors_map_to_oip_errors_after_retries(
    large: Registry, aws_endpoint: str, tmp_path: Path, case: EndpointFailure
) -> None:
    large.promote("large", "prod", 1)
    client, calls = counting_client(
        aws_endpoint, aws_error(case.status, case.code, case.message), max_attempts=3
    )
    app = api(large, tmp_path, client)
    request = {
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [1, 3], "data": A[0]},
            {"name": "b", "datatype": "FP32", "shape": [1, 3], "data": B[0]},
        ]
    }
    response = oip(app, "POST", "/v2/models/large/infer", request)
    assert response.status == case.expected_status
    error = json.loads(response.body)["error"]
    assert "SageMaker endpoint 'maas-large'" in error
    assert case.expected in error
    assert len(calls) == case.attempts


def test_the_default_runtime_client_retries_in_standard_mode() -> None:
    config = runtime_client(max_attempts=5).meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}


def test_throttling_is_tried_exactly_four_times_by_default_then_answers_503(
    large: Registry, aws_endpoint: str, tmp_path: Path
) -> None:
    large.promote("large", "prod", 1)
    client = runtime_client()
    calls = recorded_calls(client, aws_error(400, "ThrottlingException", "Rate exceeded"))
    response = oip(api(large, tmp_path, client), "POST", "/v2/models/large/infer", SUM_REQUEST)
    assert response.status == 503
    assert "is busy (ThrottlingException, 4 attempts" in json.loads(response.body)["error"]
    assert len(calls) == 4


def test_a_request_triton_refuses_is_a_400_with_tritons_own_message(
    large: Registry, aws_endpoint: str, tmp_path: Path
) -> None:
    """SageMaker wraps Triton's 4xx in a ModelError (424); the client sees Triton's 400 and words."""
    large.promote("large", "prod", 1)
    triton = "unexpected shape for input 'a' for model 'large'. Expected [-1,3], got [1,4]"
    refused = aws_error(
        424,
        "ModelError",
        f'Received client error (400) from primary with message "{{"error":"{triton}"}}".',
        OriginalStatusCode=400,
        OriginalMessage=json.dumps({"error": triton}),
        LogStreamArn="arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/maas-large",
    )
    client, calls = counting_client(aws_endpoint, refused)
    response = oip(api(large, tmp_path, client), "POST", "/v2/models/large/infer", SUM_REQUEST)
    assert response.status == 400, response.body
    error = json.loads(response.body)["error"]
    assert error == f"SageMaker endpoint 'maas-large' refused the request: {triton}"
    assert len(calls) == 1  # a refusal is not retried


def test_the_response_names_the_version_whose_variant_answered_not_the_one_asked_for(
    large: Registry, aws_endpoint: str, tmp_path: Path
) -> None:
    """Mid blue/green, SageMaker may answer from another variant than the one targeted:
    the response says which version really computed the outputs."""
    large.promote("large", "prod", 2)
    answer = {"outputs": [
        {"name": "sum", "datatype": "FP32", "shape": [1, 3], "data": [11.0, 22.0, 33.0]},
        {"name": "difference", "datatype": "FP32", "shape": [1, 3], "data": [-9.0, -18.0, -27.0]},
    ]}  # fmt: skip
    moto_answers(aws_endpoint, answer, variant="v1")
    client, calls = counting_client(aws_endpoint)
    # moto answers a request it has seen before as it did then: this one is new.
    request = {"inputs": [dict(tensor, data=[1.0, 1.0, 1.0]) for tensor in SUM_REQUEST["inputs"]]}
    response = oip(api(large, tmp_path, client), "POST", "/v2/models/large/infer", request)
    assert response.status == 200, response.body
    assert json.loads(response.body)["model_version"] == "1"
    (call,) = calls
    assert call["headers"]["X-Amzn-SageMaker-Target-Variant"] in ("v2", b"v2")
