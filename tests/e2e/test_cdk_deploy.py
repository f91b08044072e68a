"""`cdk deploy` of the real stack, with the real CDK CLI, to the embedded AWS (moto with the
extensions in maas.local.moto_gaps): bootstrap, deploy, an update, destroy.

Lambda functions run in local Python processes (maas.local.moto_gaps). What moto cannot
run is recorded, not executed: API Gateway HTTP APIs, alarms and scaling policies exist as
resources with their properties."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from maas.config import EXAMPLE
from maas.local.deploy import CdkCli, account_of
from maas.local.events import http_api_event
from tests.functional.conftest import aws_client

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_for_object(s3: Any, bucket: str, key: str, limit: float = 60) -> Any:
    deadline = time.monotonic() + limit
    while True:
        try:
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            assert time.monotonic() < deadline, f"s3://{bucket}/{key} never appeared"
            time.sleep(0.5)


def call(
    api: str, method: str, path: str, body: bytes = b"", *, sign: bool = True, raw: bool = False
) -> tuple[int, Any]:
    """An HTTP call to the deployed API, SigV4-signed with the local stack's credentials."""
    headers = {"content-type": "application/json", "host": api.removeprefix("http://")}
    request = AWSRequest(method=method, url=f"{api}{path}", data=body, headers=headers)
    if sign:
        SigV4Auth(Credentials("testing", "testing"), "execute-api", "us-east-1").add_auth(request)
    sent = urllib.request.Request(
        f"{api}{path}", data=body or None, headers=dict(request.headers.items()), method=method
    )
    try:
        with urllib.request.urlopen(sent, timeout=60) as response:
            content = response.read()
            return response.status, content if raw else json.loads(content)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def assert_metrics_visible(aws_endpoint: str, api: str) -> None:
    """The functions' EMF metrics reach CloudWatch and come out of the deployed exporter. The
    exporter reads datapoints older than its delay (60 s); here it reads up to now instead, and
    leaves out p99, which moto cannot compute (it answers None and fails to serialize it)."""
    functions = aws_client("lambda", aws_endpoint)
    (exporter,) = [
        f for f in functions.list_functions()["Functions"]
        if "MAAS_EXPORTER_NAMESPACES" in f.get("Environment", {}).get("Variables", {})
    ]  # fmt: skip
    variables = {
        **exporter["Environment"]["Variables"],
        "MAAS_EXPORTER_DELAY": "-60",
        "MAAS_EXPORTER_STATS": '["Sum", "Average", "Maximum"]',
    }
    functions.update_function_configuration(
        FunctionName=exporter["FunctionName"], Environment={"Variables": variables}
    )
    status, text = call(api, "GET", "/metrics", raw=True)
    assert status == 200
    series = [
        line for line in text.decode().splitlines() if line.startswith("maas_") and 'model="digits"' in line
    ]
    assert series, text.decode()[:2000]


def release_through_the_deployed_api(api: str, model: Path) -> None:
    """Upload through a presigned URL, register and promote through the deployed registry API,
    then predict through the deployed OIP API."""
    # A model team's first release through the deployed registry API, then a prediction.
    status, upload = call(api, "POST", "/registry/models/digits/uploads", b'{"filename": "model.onnx"}')
    assert status == 201, upload
    # As `curl -T` sends it; urllib's default form content type makes moto parse the body as a form.
    put = urllib.request.Request(
        upload["upload_url"],
        data=model.read_bytes(),
        headers={"content-type": "application/octet-stream"},
        method="PUT",
    )
    with urllib.request.urlopen(put, timeout=60) as response:
        assert response.status == 200
    body = json.dumps({"upload_key": upload["upload_key"]}).encode()
    status, version = call(api, "POST", "/registry/models/digits/versions", body)
    assert (status, version["version"]) == (201, 1), version
    assert call(api, "PUT", "/registry/models/digits/aliases/prod", b'{"version": 1}')[0] == 200
    row = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}
    status, answer = call(api, "POST", "/v2/models/digits/infer", json.dumps(row).encode())
    assert status == 200, answer
    assert (answer["model_name"], answer["model_version"]) == ("digits", "1")


def promote_a_sagemaker_model_through_the_deployed_api(api: str, aws_endpoint: str, model: Path) -> None:
    """Two versions of the SageMaker model registered and packed through the deployed API;
    promoting the second moves the endpoint, through the deployed reconciler on the table's
    stream, and the alias's target state says so."""
    for number in (1, 2):
        status, upload = call(
            api, "POST", "/registry/models/digits-large/uploads", b'{"filename": "model.onnx"}'
        )
        assert status == 201, upload
        put = urllib.request.Request(
            upload["upload_url"],
            data=model.read_bytes(),
            headers={"content-type": "application/octet-stream"},
            method="PUT",
        )
        with urllib.request.urlopen(put, timeout=60) as response:
            assert response.status == 200
        body = json.dumps({"upload_key": upload["upload_key"], "target": "sagemaker"}).encode()
        status, version = call(api, "POST", "/registry/models/digits-large/versions", body)
        assert (status, version["version"]) == (201, number), version
    status, alias = call(api, "PUT", "/registry/models/digits-large/aliases/prod", b'{"version": 2}')
    assert status == 200, alias
    deadline = time.monotonic() + 60
    while True:
        status, answer = call(api, "GET", "/registry/models/digits-large/aliases/prod/target")
        assert status == 200, answer
        if answer["target"]["state"] in ("in_service", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (answer["target"]["state"], answer["target"]["revision"]) == ("in_service", alias["revision"]), (
        answer
    )
    endpoint = aws_client("sagemaker", aws_endpoint).describe_endpoint(EndpointName="maas-e2e-digits-large")
    assert [v["VariantName"] for v in endpoint["ProductionVariants"]] == ["v2"]


@pytest.fixture(params=["embedded", "localstack"])
def target(request: pytest.FixtureRequest, aws_endpoint: str) -> str:
    """The embedded AWS always; a LocalStack too when MAAS_E2E_ENDPOINT points at one (started
    with Docker, which this machine and CI lack)."""
    if request.param == "embedded":
        return aws_endpoint
    endpoint = os.environ.get("MAAS_E2E_ENDPOINT")
    if not endpoint:
        pytest.skip(
            "MAAS_E2E_ENDPOINT is not set: start LocalStack (with Docker) and set it to run this suite there"
        )
    return endpoint


def test_bootstrap_deploy_update_and_destroy_the_example_stack(
    target: str, tmp_path: Path, model_dir: Path
) -> None:
    aws_endpoint = target
    digits_model = model_dir / "digits" / "1" / "model.onnx"
    config = tmp_path / "maas.yaml"
    config.write_text(
        EXAMPLE.replace("stack_name: maas ", "stack_name: maas-e2e ").replace(
            "batch: false ", "batch: true ", 1
        )
    )
    common = ["-c", f"config={config}", "-o", str(tmp_path / "cdk.out")]
    cdk = CdkCli(REPO_ROOT, aws_endpoint, "us-east-1", common)
    cdk.run("bootstrap", f"aws://{account_of(aws_endpoint, 'us-east-1')}/us-east-1", with_app=False)

    cdk.run("deploy", "--require-approval", "never", "--outputs-file", str(tmp_path / "out.json"))
    outputs = json.loads((tmp_path / "out.json").read_text())["maas-e2e"]
    assert outputs["EndpointMaasE2EDigitsLarge"] == "maas-e2e-digits-large"
    table = aws_client("dynamodb", aws_endpoint).describe_table(TableName=outputs["RegistryTable"])["Table"]
    assert table["DeletionProtectionEnabled"] is True
    aws_client("s3", aws_endpoint).head_bucket(Bucket=outputs["ArtifactBucketName"])
    functions = {
        f.get("Environment", {}).get("Variables", {}).get("MAAS_PRELOAD"): f
        for f in aws_client("lambda", aws_endpoint).list_functions()["Functions"]
        if f["FunctionName"].startswith("maas-e2e-")
    }
    digits = functions['["digits"]']
    assert digits["Environment"]["Variables"]["MAAS_REGISTRY_TABLE"] == outputs["RegistryTable"]
    assert digits["MemorySize"] == 1024
    # The deployed function runs (in a local Python process) and reads the deployed table.
    event = http_api_event(method="GET", target="/v2/models/digits", headers={}, body=b"")
    answer = aws_client("lambda", aws_endpoint).invoke(
        FunctionName=digits["FunctionName"], Payload=json.dumps(event).encode()
    )
    response = json.loads(answer["Payload"].read())
    assert response["statusCode"] == 404, response
    assert json.loads(response["body"]) == {"error": "model 'digits' not found"}
    # Through the deployed API, on its loopback gateway: IAM auth on every route.
    api = outputs["ApiUrl"]
    assert api.startswith("http://127.0.0.1:")
    assert call(api, "GET", "/v2/health/live", sign=False)[0] == 401
    assert call(api, "GET", "/v2/models/digits") == (404, {"error": "model 'digits' not found"})
    release_through_the_deployed_api(api, digits_model)
    assert_metrics_visible(aws_endpoint, api)

    # Batch: a file uploaded under inputs/digits/ reaches the function through the deployed
    # S3 notification, queue and event source mapping; every row lands in outputs or errors.
    s3, bucket = aws_client("s3", aws_endpoint), outputs["ArtifactBucketName"]
    rows = [json.dumps([0.0] * 64), json.dumps([1.0] * 64), json.dumps([1.0] * 63)]
    s3.put_object(Bucket=bucket, Key="inputs/digits/day-1.jsonl", Body="\n".join(rows).encode())
    manifest = wait_for_object(s3, bucket, "outputs/digits/day-1.jsonl.manifest.json")
    assert (manifest["rows_in"], manifest["rows_out"], manifest["rows_failed"]) == (3, 2, 1)
    endpoint = aws_client("sagemaker", aws_endpoint).describe_endpoint(EndpointName="maas-e2e-digits-large")
    assert [v["VariantName"] for v in endpoint["ProductionVariants"]] == ["v1"]
    promote_a_sagemaker_model_through_the_deployed_api(api, aws_endpoint, digits_model)

    # An update: more memory for digits.
    config.write_text(config.read_text().replace("memory_mb: 1024         # 128 - 10240", "memory_mb: 2048"))
    cdk.run("deploy", "--require-approval", "never")
    memory = {
        f["Description"]: f["MemorySize"]
        for f in aws_client("lambda", aws_endpoint).list_functions()["Functions"]
        if f.get("Environment", {}).get("Variables", {}).get("MAAS_PRELOAD") == '["digits"]'
        and f["FunctionName"].startswith("maas-e2e-")
    }
    # The batch function takes the model's memory unless batch_memory_mb says otherwise.
    assert memory == {
        "maas: OIP v2 prediction for model digits": 2048,
        "maas: batch files of model digits": 2048,
    }

    cdk.run("destroy", "--force")
    stacks = aws_client("cloudformation", aws_endpoint).list_stacks()["StackSummaries"]
    assert {s["StackStatus"] for s in stacks if s["StackName"] == "maas-e2e"} <= {"DELETE_COMPLETE"}
