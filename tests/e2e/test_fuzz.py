"""Bad input against `maas dev` on 127.0.0.1: schemathesis generates requests for every
operation of the published OpenAPI document, and the named hostile cases are sent as
they are. No response may be a 5xx, every error body is {"error": "..."}, and the
process lives on."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from maas.openapi import build_document
from tests import fakes
from tests.e2e.conftest import DevServer, running_dev_server

pytestmark = pytest.mark.e2e

SCHEMA = schemathesis.openapi.from_dict(build_document())
# Requests per operation; with 21 operations, about 2,000 requests in all (a bounded run).
EXAMPLES = 80
TRIED: Counter[str] = Counter()  # requests sent, by operation
FUZZED: Counter[str] = Counter()  # of those, the ones Hypothesis generated (not coverage or examples)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """`maas dev` with the demo models and `identity` (one input per datatype, BYTES included)."""
    models = tmp_path_factory.mktemp("fuzz-models")
    fakes.identity_model(models / "identity" / "1" / "model.onnx")
    with running_dev_server(models) as running:
        yield running


@schemathesis.check
def error_bodies_name_the_problem(ctx: Any, response: Any, case: Any) -> bool:
    TRIED[case.operation.label] += 1
    if case.meta is not None and case.meta.phase.name == "fuzzing":
        FUZZED[case.operation.label] += 1
    if response.status_code >= 400:
        assert response.headers.get("content-type", [""])[0].startswith("application/json"), (
            f"{case.method} {case.formatted_path}: {response.status_code} {response.headers} {response.content[:200]!r}"
        )
        body = response.json()
        assert isinstance(body, dict) and set(body) == {"error"}, body
        assert isinstance(body["error"], str) and body["error"].strip(), body
    return True


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_generated_requests_never_get_a_server_error(case: Any, server: DevServer) -> None:
    case.call_and_validate(
        base_url=server.url,
        checks=[not_a_server_error, response_schema_conformance, error_bodies_name_the_problem],
        timeout=30,
    )


def test_schemathesis_sent_at_least_half_of_the_planned_requests(request: pytest.FixtureRequest) -> None:
    """A fuzz run that quietly generated little (examples filtered away, operations skipped)
    would pass while proving nothing: it must send half of what it planned, on every operation."""
    fuzzed = test_generated_requests_never_get_a_server_error.__name__
    if not any(item.name.startswith(fuzzed) for item in request.session.items):
        pytest.skip(f"{fuzzed} was not selected in this run")
    operations = len(list(SCHEMA.get_all_operations()))
    planned = EXAMPLES * operations
    generated = sum(FUZZED.values())
    assert generated >= planned / 2, f"Hypothesis generated {generated} of {planned} planned: {dict(FUZZED)}"
    assert len(TRIED) == operations, f"operations never called: {operations - len(TRIED)}"


def send(
    server: DevServer, method: str, path: str, body: bytes | str = b"", **headers: str
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    payload = body.encode() if isinstance(body, str) else body
    connection.request(method, path, payload, {"content-type": "application/json", **headers})
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    return response.status, json.loads(answer)


ROW = [0.0] * 64


def infer_body(model_input: dict[str, Any]) -> str:
    return json.dumps({"inputs": [model_input]})


HOSTILE = {
    "body-over-6-mb": (
        "/v2/models/digits/infer",
        infer_body({"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ["x" * 1000] * 7000}),
        413,
        "6 MB",
    ),
    "data-length-not-matching-shape": (
        "/v2/models/digits/infer",
        infer_body({"name": "input", "shape": [2, 64], "datatype": "FP32", "data": ROW}),
        400,
        "input",
    ),
    "nan-in-fp32": (
        "/v2/models/digits/infer",
        '{"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":[NaN' + ",0" * 63 + "]}]}",
        400,
        "element 0 is nan; FP32 inputs must be finite",
    ),
    "infinity-in-fp32": (
        "/v2/models/digits/infer",
        '{"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":[Infinity' + ",0" * 63 + "]}]}",
        400,
        "element 0 is inf; FP32 inputs must be finite",
    ),
    "bytes-with-invalid-base64": (
        "/v2/models/identity/infer",
        infer_body(
            {
                "name": "in_bytes",
                "shape": [1],
                "datatype": "BYTES",
                "data": ["not base64!"],
                "parameters": {"content_type": "base64"},
            }
        ),
        400,
        "base64",
    ),
    "deeply-nested-json": (
        "/v2/models/digits/infer",
        "[" * 100_000 + "]" * 100_000,
        400,
        "invalid inference request",
    ),
    "10000-inputs": (
        "/v2/models/digits/infer",
        json.dumps(
            {
                "inputs": [
                    {"name": f"i{n}", "shape": [1], "datatype": "FP32", "data": [0]} for n in range(10_000)
                ]
            }
        ),
        400,
        "input",
    ),
    # Names are ASCII: no model can have this one, and the answer says why.
    "unicode-model-name": ("/v2/models/%D0%BC%D0%BE%D0%B4%D0%B5%D0%BB%D1%8C/infer", "{}", 400, "модель"),
    # The router's `$` matches before a final newline: without a check, this would serve `digits`.
    "newline-after-infer": (
        "/v2/models/digits/infer%0A",
        infer_body({"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}),
        400,
        "control character",
    ),
    "newline-after-registry-route": (
        "/registry/models/digits/aliases/prod/rollback%0A",
        "{}",
        400,
        "control character",
    ),
    # The gateway decodes %2F, so the path has more segments and matches no route.
    "path-traversal-in-model-name": ("/v2/models/..%2F..%2Fetc%2Fpasswd/infer", "{}", 404, "no OIP route"),
    "dot-dot-in-model-name": ("/v2/models/a..b/infer", "{}", 400, "is not valid"),
    "negative-shape": (
        "/v2/models/digits/infer",
        infer_body({"name": "input", "shape": [-5, 64], "datatype": "FP32", "data": ROW}),
        400,
        "negative",
    ),
    "huge-shape": (
        "/v2/models/digits/infer",
        infer_body({"name": "input", "shape": [10**18, 64], "datatype": "FP32", "data": ROW}),
        400,
        "input",
    ),
    "path-traversal-in-upload-file-name": (
        "/registry/models/digits/uploads",
        '{"filename": "../../model.onnx"}',
        400,
        "plain file name",
    ),
    "path-traversal-in-upload-key": (
        "/registry/models/digits/versions",
        '{"upload_key": "uploads/../artifacts/digits/x/model.onnx"}',
        400,
        "not an upload key",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_each_named_hostile_request_gets_a_4xx_naming_the_problem(server: DevServer, case: str) -> None:
    path, body, status, message = HOSTILE[case]
    answered, answer = send(server, "POST", path, body)
    assert answered == status, answer
    assert set(answer) == {"error"}
    assert message in answer["error"], answer


# Failing examples schemathesis found, kept: each was a 5xx or an HTML body before the fix.
FOUND_BY_FUZZING = {
    # http.server answered 501 with an HTML page for any method without a do_ handler.
    "trace-method": ("TRACE", "/v2/health/live", 405, "method TRACE is not allowed"),
    "made-up-method": ("BREW", "/v2/models/digits", 405, "method BREW is not allowed"),
    # '²'.isdigit() is True but int('²') raises: a 500 from the registry API.
    "superscript-version": ("GET", "/registry/models/%C2%B2/versions/%C2%B2", 400, "is not a version number"),
    "superscript-version-oip": ("GET", "/v2/models/digits/versions/%C2%B2", 400, "alias '²' is not valid"),
}


@pytest.mark.parametrize("case", list(FOUND_BY_FUZZING), ids=list(FOUND_BY_FUZZING))
def test_requests_the_fuzzer_broke_the_server_with_now_get_a_json_4xx(server: DevServer, case: str) -> None:
    method, path, status, message = FOUND_BY_FUZZING[case]
    answered, answer = send(server, method, path)
    assert answered == status, answer
    assert message in answer["error"], answer


def test_the_server_is_alive_after_all_of_it(server: DevServer) -> None:
    assert server.process.poll() is None
    status, answer = send(server, "GET", "/v2/health/ready")
    assert (status, answer) == (200, {"ready": True})
    tried = sum(TRIED.values())
    print(f"schemathesis sent {tried} requests over {len(TRIED)} operations")


def test_the_published_openapi_document_is_current() -> None:
    published = Path(__file__).resolve().parents[2] / "openapi.json"
    assert json.loads(published.read_text()) == build_document(), "regenerate it with `maas openapi`"
