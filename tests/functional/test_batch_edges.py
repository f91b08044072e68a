"""Batch promises that mutation testing found no test holding (`make mutate`, notes in
RELIABILITY.md): one bad row fails alone even when the whole chunk cannot be predicted at once,
a group that fails says which rows, every file format's edge (a blank line, an empty CSV, a
pickled .npy, booleans in any case), failed manifests say everything, and an upload is
remembered for a week."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from maas.batch import BatchProcessor
from maas.batch.sqs import SqsBatchHandler, s3_objects
from maas.dataplane import DataPlane
from maas.errors import InferenceError, InvalidInput
from maas.local.context import LocalLambdaContext
from maas.registry import Registry, RegistrySource
from tests import fakes
from tests.functional.conftest import upload


def save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def pairs_model(path: Path) -> Path:
    """`a` + `b`, both FP32 [batch, n]: rows of any length, but `a` and `b` of one row must match."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", "n"])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", "n"])
    total = helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", "n"])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["sum"])], "pairs", [a, b], [total])
    return save(graph, path)


def fixed_rows_any_length_model(path: Path, rows: int) -> Path:
    """`x` FP32 [rows, n] -> `total` [rows]: a static batch of rows of any (shared) length."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, "n"])
    total = helper.make_tensor_value_info("total", TensorProto.FLOAT, [rows])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    node = helper.make_node("ReduceSum", ["x", "axes"], ["total"], keepdims=0)
    return save(helper.make_graph([node], "fixed_any", [x], [total], initializer=[axes]), path)


def flag_model(path: Path) -> Path:
    """`flag` BOOL [batch] -> `negated`."""
    flag = helper.make_tensor_value_info("flag", TensorProto.BOOL, ["batch"])
    negated = helper.make_tensor_value_info("negated", TensorProto.BOOL, ["batch"])
    graph = helper.make_graph([helper.make_node("Not", ["flag"], ["negated"])], "flag", [flag], [negated])
    return save(graph, path)


@pytest.fixture
def registry(dynamo_registry: Registry, artifacts: dict[str, Path], tmp_path: Path) -> Registry:
    dynamo_registry.register("digits", artifacts["digits"])
    dynamo_registry.promote("digits", "prod", 1)
    dynamo_registry.register("digits", artifacts["digits"])
    dynamo_registry.promote("digits", "canary", 2)
    for name, build in [("pairs", pairs_model), ("flag", flag_model)]:
        dynamo_registry.register(name, build(tmp_path / f"{name}.onnx"))
        dynamo_registry.promote(name, "prod", 1)
    dynamo_registry.register("fixed", fixed_rows_any_length_model(tmp_path / "fixed.onnx", 4))
    dynamo_registry.promote("fixed", "prod", 1)
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.promote("sum", "prod", 1)
    return dynamo_registry


@pytest.fixture
def batch(registry: Registry, tmp_path: Path) -> BatchProcessor:
    plane = DataPlane(RegistrySource(registry, cache_dir=tmp_path / "cache"))
    return BatchProcessor(plane, registry.artifacts.client, chunk_size=100)


@pytest.fixture
def bucket(registry: Registry) -> str:
    return registry.artifacts.bucket


def run(
    batch: BatchProcessor, bucket: str, key: str, body: bytes
) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    """Processes `body` uploaded at `key`: (manifest, JSONL output records, error records)."""
    batch.s3.put_object(Bucket=bucket, Key=key, Body=body)
    manifest = batch.process(bucket, key)
    records = []
    if key.endswith(".jsonl"):
        read = batch.s3.get_object(Bucket=bucket, Key=manifest.output)["Body"].read().decode()
        records = [json.loads(line) for line in read.splitlines()]
    errors = []
    if manifest.errors:
        text = batch.s3.get_object(Bucket=bucket, Key=manifest.errors)["Body"].read().decode()
        errors = [json.loads(line) for line in text.splitlines()]
    return manifest, records, errors


def pair(a: list[float], b: list[float]) -> str:
    return json.dumps({"inputs": [{"name": "a", "data": a}, {"name": "b", "data": b}]})


def test_rows_of_different_lengths_are_predicted_one_by_one_and_a_bad_one_fails_alone(
    batch: BatchProcessor, bucket: str
) -> None:
    """The chunk cannot be stacked into one call, so each row is predicted alone."""
    lines = [pair([1, 2], [3, 4]), pair([1, 2, 3], [1, 2]), pair([1, 2, 3], [1, 1, 1])]
    manifest, records, errors = run(batch, bucket, "inputs/pairs/rows.jsonl", "\n".join(lines).encode())
    assert (manifest.rows_in, manifest.rows_out, manifest.rows_failed) == (3, 2, 1)
    assert {r["row"]: r["outputs"]["sum"] for r in records} == {0: [4.0, 6.0], 2: [2.0, 3.0, 4.0]}
    assert [e["row"] for e in errors] == [1]
    assert errors[0]["error"].startswith("prediction failed: ") and "broadcast" in errors[0]["error"]


def test_a_group_that_cannot_be_predicted_fails_naming_its_rows_and_the_others_land(
    batch: BatchProcessor, bucket: str
) -> None:
    """The model takes exactly 4 rows per call; rows 4-7 disagree on their length."""
    lengths = [2, 2, 2, 2, 2, 2, 3, 2, 2]
    lines = [json.dumps([1.0] * n) for n in lengths]
    manifest, records, errors = run(batch, bucket, "inputs/fixed/rows.jsonl", "\n".join(lines).encode())
    assert (manifest.rows_out, manifest.rows_failed) == (5, 4)
    assert {r["row"]: r["outputs"]["total"] for r in records} == {0: 2.0, 1: 2.0, 2: 2.0, 3: 2.0, 8: 2.0}
    assert [e["row"] for e in errors] == [4, 5, 6, 7]
    assert {e["error"] for e in errors} == {
        "prediction failed for rows 4-7 (the model takes 4 rows per call): "
        "all input arrays must have the same shape"
    }


def test_blank_lines_in_a_jsonl_file_are_skipped_and_the_rows_after_them_read(
    batch: BatchProcessor, bucket: str
) -> None:
    body = "\n".join([json.dumps([1.0] * 64), "", "   ", json.dumps([2.0] * 64), ""]).encode()
    manifest, records, _ = run(batch, bucket, "inputs/digits/gaps.jsonl", body)
    assert (manifest.rows_in, manifest.rows_out) == (2, 2)
    assert [r["row"] for r in records] == [0, 3]  # rows are numbered by line


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("[1, 2, 3]", "cannot read row: a bare array only fits a model with one input"),
        ('{"rows": [1, 2, 3]}', 'cannot read row: expected {"inputs": [...]} or an array'),
        ("5", 'cannot read row: expected {"inputs": [...]} or an array'),
    ],
    ids=["bare-array-for-two-inputs", "object-without-inputs", "a-number"],
)
def test_a_jsonl_row_of_the_wrong_shape_says_what_was_expected(
    batch: BatchProcessor, bucket: str, line: str, error: str
) -> None:
    good = json.dumps({"inputs": [{"name": "a", "data": [1, 2, 3]}, {"name": "b", "data": [1, 2, 3]}]})
    manifest, _, errors = run(batch, bucket, "inputs/sum/rows.jsonl", f"{good}\n{line}".encode())
    assert (manifest.rows_out, manifest.rows_failed) == (1, 1)
    assert errors == [{"row": 1, "error": error}]


def test_an_empty_csv_file_gives_no_rows_and_no_errors(batch: BatchProcessor, bucket: str) -> None:
    manifest, _, errors = run(batch, bucket, "inputs/digits/empty.csv", b"")
    assert (manifest.rows_in, manifest.rows_out, manifest.rows_failed, manifest.errors) == (0, 0, 0, None)
    assert errors == []


def test_a_csv_header_that_cannot_be_read_fails_the_file_saying_why(
    batch: BatchProcessor, bucket: str
) -> None:
    body = ("h" * (csv.field_size_limit() + 1) + "\n1\n").encode()
    with pytest.raises(InvalidInput, match=r"^the CSV header cannot be read: field larger than field limit"):
        run(batch, bucket, "inputs/digits/bad-header.csv", body)


def test_a_csv_row_with_too_few_fields_and_a_field_too_large_fail_with_their_row_number(
    batch: BatchProcessor, bucket: str
) -> None:
    header = ",".join(f"p{i}" for i in range(64))
    huge = "9" * (csv.field_size_limit() + 1)
    body = "\n".join([header, "1,2,3", ",".join(["1"] * 64), huge]).encode()
    manifest, _, errors = run(batch, bucket, "inputs/digits/short.csv", body)
    assert (manifest.rows_out, manifest.rows_failed) == (1, 2)
    assert errors[0] == {"row": 0, "error": "cannot read row: 3 fields where the header has 64"}
    assert errors[1]["row"] == 2


def test_a_csv_without_a_column_for_an_input_fails_the_file_naming_it(
    batch: BatchProcessor, bucket: str
) -> None:
    with pytest.raises(InvalidInput, match=r"^the CSV header names no column for input 'b'$"):
        run(batch, bucket, "inputs/sum/rows.csv", b"a_0,a_1,a_2\n1,2,3\n")


def test_csv_booleans_are_true_false_or_1_0_in_any_case(batch: BatchProcessor, bucket: str) -> None:
    long = "y" * 60
    body = f"flag\nTRUE\nFalse\n1\n0\nyes\n{long}\n".encode()
    manifest, _, errors = run(batch, bucket, "inputs/flag/rows.csv", body)
    table = list(
        csv.reader(
            io.StringIO(batch.s3.get_object(Bucket=bucket, Key=manifest.output)["Body"].read().decode())
        )
    )
    assert table == [["row", "negated"], ["0", "False"], ["1", "True"], ["2", "False"], ["3", "True"]]
    assert errors == [
        {"row": 4, "error": "cannot read row: input 'flag' takes true/false, not 'yes'"},
        {"row": 5, "error": f"cannot read row: input 'flag' takes true/false, not '{'y' * 40}'"},
    ]


def test_a_long_csv_field_that_is_not_a_number_is_quoted_to_40_characters(
    batch: BatchProcessor, bucket: str
) -> None:
    header = ",".join(f"p{i}" for i in range(64))
    body = "\n".join([header, ",".join(["z" * 50] + ["1"] * 63)]).encode()
    _, _, errors = run(batch, bucket, "inputs/digits/words.csv", body)
    assert errors == [{"row": 0, "error": f"cannot read row: input 'input' takes numbers, not '{'z' * 40}'"}]


def npy(array: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def test_a_npy_file_of_python_objects_is_refused_not_unpickled(batch: BatchProcessor, bucket: str) -> None:
    """Unpickling runs code from the file: an object array is refused whatever it holds (the
    memory map maas reads through takes plain arrays only)."""
    objects = np.empty(2, dtype=object)
    objects[:] = [[1.0] * 64, [2.0] * 64]
    with pytest.raises(InvalidInput, match=r"^not a NumPy array file: "):
        run(batch, bucket, "inputs/digits/objects.npy", npy(objects, allow_pickle=True))


def test_a_npy_row_that_cannot_be_read_fails_with_its_row_number(batch: BatchProcessor, bucket: str) -> None:
    rows = np.ones((3, 64), dtype=np.float32)
    rows[1, 5] = np.nan
    manifest, _, errors = run(batch, bucket, "inputs/digits/rows.npy", npy(rows))
    assert (manifest.rows_out, manifest.rows_failed) == (2, 1)
    assert errors == [
        {
            "row": 1,
            "error": "cannot read row: input 'input': element 5 is nan; FP32 inputs must be finite numbers",
        }
    ]


def test_a_npy_file_for_a_model_with_two_inputs_fails_saying_so(batch: BatchProcessor, bucket: str) -> None:
    with pytest.raises(InvalidInput, match=r"^a \.npy file feeds models with exactly one input$"):
        run(batch, bucket, "inputs/sum/rows.npy", npy(np.ones((2, 3), dtype=np.float32)))


def test_the_version_a_path_names_is_the_one_drawn_for_it(batch: BatchProcessor) -> None:
    assert batch.model_version("inputs/digits/rows.jsonl") == "1"
    assert batch.model_version("inputs/digits/canary/rows.jsonl") == "2"
    assert batch.model_version("inputs/digits/2/rows.jsonl") == "2"


def test_a_failed_manifest_says_what_failed_for_which_upload_and_that_nothing_was_produced(
    batch: BatchProcessor, bucket: str
) -> None:
    manifest = batch.record_failure(bucket, "inputs/digits/canary/day1/x.csv", "it broke", "v-7")
    stored_at = "outputs/digits/canary/day1/x.csv.manifest.json"
    stored = json.loads(batch.s3.get_object(Bucket=bucket, Key=stored_at)["Body"].read())
    assert manifest is not None and stored == {
        "model": "digits",
        "version": None,
        "sha256": None,
        "input": "inputs/digits/canary/day1/x.csv",
        "output": None,
        "errors": None,
        "rows_in": 0,
        "rows_out": 0,
        "rows_failed": 0,
        "duration_seconds": 0.0,
        "status": "failed",
        "reason": "it broke",
        "input_version": "v-7",
        "alias": "canary",
    }


def test_a_failure_for_a_key_that_names_no_model_writes_no_manifest(
    batch: BatchProcessor, bucket: str
) -> None:
    assert batch.record_failure(bucket, "elsewhere/x.jsonl", "not under inputs/") is None


def test_s3s_test_event_names_no_object() -> None:
    """S3 sends `{"Event": "s3:TestEvent"}` when a notification is set up: there is nothing to run."""
    assert s3_objects(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []


def sqs_event(*bodies: str) -> dict[str, Any]:
    records = [
        {"messageId": f"m-{n}", "receiptHandle": "r", "body": body, "attributes": {}, "messageAttributes": {}}
        for n, body in enumerate(bodies)
    ]
    return {"Records": [{**record, "eventSource": "aws:sqs"} for record in records]}


class CrashingOnSomeFiles(BatchProcessor):
    """A file named `crash` fails in prediction with an error that may pass (500)."""

    def process(self, bucket: str, key: str, *args: Any, **kwargs: Any) -> Any:
        if "crash" in key:
            raise InferenceError("the model crashed")
        return super().process(bucket, key, *args, **kwargs)


def test_an_error_that_may_pass_is_retried_not_recorded_as_failed(batch: BatchProcessor, bucket: str) -> None:
    handler = SqsBatchHandler(CrashingOnSomeFiles(batch.dataplane, batch.s3))
    where = {"s3": batch.s3, "bucket": bucket}
    good = upload(where, "inputs/digits/fine.jsonl", json.dumps([1.0] * 64).encode())
    crash = upload(where, "inputs/digits/crash.jsonl", json.dumps([1.0] * 64).encode())
    answer = handler(sqs_event(good, crash), LocalLambdaContext())
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    listed = batch.s3.list_objects_v2(Bucket=bucket, Prefix="outputs/digits/crash")
    assert listed.get("KeyCount", 0) == 0


def test_without_an_idempotency_table_every_delivery_runs(batch: BatchProcessor, bucket: str) -> None:
    handler = SqsBatchHandler(batch)
    body = upload(
        {"s3": batch.s3, "bucket": bucket}, "inputs/digits/twice.jsonl", json.dumps([1.0] * 64).encode()
    )
    for _ in range(2):
        batch.s3.delete_object(Bucket=bucket, Key="outputs/digits/twice.jsonl.manifest.json")
        assert handler(sqs_event(body), LocalLambdaContext()) == {"batchItemFailures": []}
        manifest = json.loads(
            batch.s3.get_object(Bucket=bucket, Key="outputs/digits/twice.jsonl.manifest.json")["Body"].read()
        )
        assert manifest["rows_out"] == 1


def test_a_file_that_can_never_run_records_the_version_of_the_upload_that_failed(
    batch: BatchProcessor, bucket: str
) -> None:
    batch.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    body = upload({"s3": batch.s3, "bucket": bucket}, "inputs/digits/x.parquet", b"PAR1")
    version = json.loads(body)["Records"][0]["s3"]["object"]["versionId"]
    SqsBatchHandler(batch)(sqs_event(body), LocalLambdaContext())
    manifest = json.loads(
        batch.s3.get_object(Bucket=bucket, Key="outputs/digits/x.parquet.manifest.json")["Body"].read()
    )
    assert (manifest["status"], manifest["input_version"]) == ("failed", version)


def test_a_processed_upload_is_remembered_for_a_week(
    wiring: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notification redelivered within 7 days finds the first run's result."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", wiring["endpoint"])
    body = upload(wiring, "inputs/digits/once.jsonl", json.dumps([1.0] * 64).encode())
    assert wiring["handler"](sqs_event(body), LocalLambdaContext()) == {"batchItemFailures": []}
    dynamodb = boto3.client("dynamodb", endpoint_url=wiring["endpoint"], region_name="us-east-1")
    table = "idempotency-" + wiring["bucket"].split("-")[-1]
    items = dynamodb.scan(TableName=table)["Items"]
    completed = [item for item in items if item.get("status", {}).get("S") == "COMPLETED"]
    assert completed, items
    expires_in = int(completed[-1]["expiration"]["N"]) - time.time()
    assert 7 * 24 * 3600 - 120 < expires_in <= 7 * 24 * 3600


def test_a_file_under_an_alias_gets_its_outputs_and_errors_under_that_alias(
    batch: BatchProcessor, bucket: str
) -> None:
    """Two runs of one file name under two aliases must not overwrite each other's results."""
    body = "\n".join([json.dumps([1.0] * 64), "{broken"]).encode()
    manifest, _, errors = run(batch, bucket, "inputs/digits/canary/day1/x.jsonl", body)
    assert (manifest.version, manifest.output, manifest.errors) == (
        "2",
        "outputs/digits/canary/day1/x.jsonl",
        "errors/digits/canary/day1/x.jsonl.errors.jsonl",
    )
    assert [e["row"] for e in errors] == [1]


def test_the_upload_a_notification_names_is_the_one_processed_even_once_overwritten(
    batch: BatchProcessor, bucket: str
) -> None:
    s3 = batch.s3
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key = "inputs/digits/versions.jsonl"
    first = s3.put_object(Bucket=bucket, Key=key, Body=json.dumps([1.0] * 64).encode())["VersionId"]
    s3.put_object(Bucket=bucket, Key=key, Body="\n".join([json.dumps([1.0] * 64)] * 3).encode())
    manifest = batch.process(bucket, key, first)
    assert (manifest.input, manifest.input_version, manifest.rows_in) == (key, first, 1)
    stored = s3.get_object(Bucket=bucket, Key="outputs/digits/versions.jsonl.manifest.json")
    assert stored["ContentType"] == "application/json"
    document = json.loads(stored["Body"].read())
    assert (document["input"], document["input_version"]) == (key, first)
    duration = document["duration_seconds"]
    assert isinstance(duration, float) and 0 <= duration < 60 and duration == round(duration, 3)


def test_a_row_that_is_not_utf8_fails_alone(batch: BatchProcessor, bucket: str) -> None:
    good = json.dumps([1.0] * 64).encode()
    body = b"\n".join([good, b'["\xff\xfe"]', good])
    manifest, records, errors = run(batch, bucket, "inputs/digits/latin1.jsonl", body)
    assert (manifest.rows_out, manifest.rows_failed) == (2, 1)
    assert [r["row"] for r in records] == [0, 2]
    assert [e["row"] for e in errors] == [1]


def test_a_quoted_csv_field_keeps_its_line_break(
    batch: BatchProcessor, registry: Registry, bucket: str, tmp_path: Path
) -> None:
    registry.register("text", fakes.text_model(tmp_path / "text.onnx"))
    registry.promote("text", "prod", 1)
    body = b'text,count\r\n"two\r\nlines",1\r\n'
    manifest, _, _ = run(batch, bucket, "inputs/text/multiline.csv", body)
    table = list(
        csv.reader(
            io.StringIO(
                batch.s3.get_object(Bucket=bucket, Key=manifest.output)["Body"].read().decode(), newline=""
            )
        )
    )
    assert table[1] == ["0", "two\r\nlines", "2"]


@pytest.mark.parametrize("key", ["inputs/digits//x.jsonl", "inputs//x.jsonl", "inputs/digits/x/"])
def test_a_key_with_an_empty_folder_or_file_name_is_refused(
    batch: BatchProcessor, bucket: str, key: str
) -> None:
    with pytest.raises(InvalidInput, match=r"must look like inputs/<model>/\[<alias or version>/\]<file>"):
        batch.process(bucket, key)


def test_a_file_in_a_format_maas_does_not_read_is_told_which_it_does(
    batch: BatchProcessor, bucket: str
) -> None:
    with pytest.raises(
        InvalidInput,
        match=r"^'inputs/digits/x\.parquet' is not a batch file maas reads \(expected \.jsonl, \.csv, \.npy\)$",
    ):
        batch.process(bucket, "inputs/digits/x.parquet")


def test_a_model_whose_inputs_disagree_on_rows_is_refused_by_name(
    batch: BatchProcessor, registry: Registry, bucket: str, tmp_path: Path
) -> None:
    registry.register("mixed", fakes.mixed_rows_model(tmp_path / "mixed.onnx"))
    registry.promote("mixed", "prod", 1)
    batch.s3.put_object(Bucket=bucket, Key="inputs/mixed/rows.jsonl", Body=b"[]")
    with pytest.raises(InvalidInput, match=r"^model 'mixed' has inputs with different first dimensions"):
        batch.process(bucket, "inputs/mixed/rows.jsonl")


def test_the_predict_functions_batch_side_is_wired_from_its_settings(
    wiring: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk size and idempotency table come from MAAS_* settings: a redelivery does nothing."""
    from maas.batch.wiring import sqs_handler
    from maas.settings import PredictSettings

    monkeypatch.setenv("AWS_ENDPOINT_URL", wiring["endpoint"])
    plane = wiring["handler"].processor.dataplane
    table = "idempotency-" + wiring["bucket"].split("-")[-1]
    handler = sqs_handler(plane, PredictSettings(idempotency_table=table, batch_chunk_rows=7))
    assert (handler.processor.chunk_size, handler.processor.dataplane) == (7, plane)
    body = upload(wiring, "inputs/digits/wired.jsonl", json.dumps([1.0] * 64).encode())
    manifest_key = "outputs/digits/wired.jsonl.manifest.json"
    assert handler(sqs_event(body), LocalLambdaContext()) == {"batchItemFailures": []}
    stored = json.loads(wiring["s3"].get_object(Bucket=wiring["bucket"], Key=manifest_key)["Body"].read())
    assert stored["rows_out"] == 1
    wiring["s3"].delete_object(Bucket=wiring["bucket"], Key=manifest_key)
    assert handler(sqs_event(body), LocalLambdaContext()) == {"batchItemFailures": []}
    assert wiring["s3"].list_objects_v2(Bucket=wiring["bucket"], Prefix=manifest_key).get("KeyCount", 0) == 0


def test_a_csv_output_names_a_column_for_each_value_of_a_vector_output(
    batch: BatchProcessor, bucket: str
) -> None:
    manifest, _, _ = run(batch, bucket, "inputs/pairs/rows.csv", b"a_0,a_1,b_0,b_1\n1,2,3,4\n")
    table = list(
        csv.reader(
            io.StringIO(batch.s3.get_object(Bucket=bucket, Key=manifest.output)["Body"].read().decode())
        )
    )
    assert table == [["row", "sum_0", "sum_1"], ["0", "4.0", "6.0"]]
