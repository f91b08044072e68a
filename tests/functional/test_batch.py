"""Batch inference on S3 objects (moto): every format, bad rows, aliases in the path, memory."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from maas.batch import BatchProcessor
from maas.dataplane import DataPlane
from maas.errors import InvalidInput, ModelNotFound
from maas.local.demo import digits_split
from maas.protocol import InferenceRequest
from maas.registry import Registry, RegistrySource
from tests import fakes


@pytest.fixture
def batch(dynamo_registry: Registry, artifacts: dict[str, Path], tmp_path: Path) -> BatchProcessor:
    dynamo_registry.register("digits", artifacts["digits"])
    dynamo_registry.promote("digits", "prod", 1)
    for _ in range(2):
        dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.promote("sum", "prod", 2)
    plane = DataPlane(RegistrySource(dynamo_registry, cache_dir=tmp_path / "cache"))
    return BatchProcessor(plane, dynamo_registry.artifacts.client, chunk_size=100)


def put(batch: BatchProcessor, bucket: str, key: str, body: bytes) -> None:
    batch.s3.put_object(Bucket=bucket, Key=key, Body=body)


def get(batch: BatchProcessor, bucket: str, key: str) -> bytes:
    return batch.s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def oip_labels(plane: DataPlane, rows: np.ndarray) -> list[int]:
    request = InferenceRequest.model_validate(
        {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32", "data": rows.tolist()}]}
    )
    outputs = {o.name: o for o in plane.infer("digits", request).response.outputs}
    return list(outputs["label"].data)


def test_jsonl_rows_get_the_same_predictions_as_the_oip_api(
    batch: BatchProcessor, dynamo_registry: Registry
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    _, rows, _, _ = digits_split()
    rows = rows[:250]
    lines = [
        json.dumps(row.tolist())
        if i % 2
        else json.dumps({"inputs": [{"name": "input", "data": row.tolist()}]})
        for i, row in enumerate(rows)
    ]
    put(batch, bucket, "inputs/digits/day1/rows.jsonl", "\n".join(lines).encode())
    manifest = batch.process(bucket, "inputs/digits/day1/rows.jsonl")
    assert (manifest.rows_in, manifest.rows_out, manifest.rows_failed) == (250, 250, 0)
    assert (manifest.model, manifest.version, manifest.output) == (
        "digits",
        "1",
        "outputs/digits/day1/rows.jsonl",
    )
    records = [json.loads(line) for line in get(batch, bucket, manifest.output).decode().splitlines()]
    assert [r["row"] for r in records] == list(range(250))
    # The demo model is dynamically quantized: activation ranges are computed per call, so a
    # row's answer can depend on the rows batched with it. Compare chunk for chunk.
    expected = [
        label
        for start in range(0, 250, 100)
        for label in oip_labels(batch.dataplane, rows[start : start + 100])
    ]
    assert [r["outputs"]["label"] for r in records] == expected
    stored = json.loads(get(batch, bucket, manifest.output + ".manifest.json"))
    assert stored["rows_out"] == 250 and stored["sha256"] == dynamo_registry.get("digits", 1).sha256


def test_csv_and_npy_files_come_back_in_their_own_format(
    batch: BatchProcessor, dynamo_registry: Registry
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    _, rows, _, _ = digits_split()
    rows = rows[:120]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([f"pixel_{i}" for i in range(64)])
    writer.writerows(rows.tolist())
    put(batch, bucket, "inputs/digits/rows.csv", text.getvalue().encode())
    csv_manifest = batch.process(bucket, "inputs/digits/rows.csv")
    table = list(csv.reader(io.StringIO(get(batch, bucket, csv_manifest.output).decode())))
    assert table[0][:2] == ["row", "label"] and len(table) == 121
    expected = oip_labels(batch.dataplane, rows)
    assert [int(r[1]) for r in table[1:]] == expected

    buffer = io.BytesIO()
    np.save(buffer, rows)
    put(batch, bucket, "inputs/digits/rows.npy", buffer.getvalue())
    npy_manifest = batch.process(bucket, "inputs/digits/rows.npy")
    assert npy_manifest.output == "outputs/digits/rows.npz"
    with np.load(io.BytesIO(get(batch, bucket, npy_manifest.output))) as result:
        assert result["label"].tolist() == expected
        assert result["probabilities"].shape == (120, 10)


def test_bad_rows_go_to_errors_and_every_row_is_counted_once(
    batch: BatchProcessor, dynamo_registry: Registry
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    good = json.dumps([1.0] * 64)
    lines = [
        good,
        "{not json",
        good,
        json.dumps([1.0] * 63),
        json.dumps({"inputs": []}),
        good,
        json.dumps(["x"] * 64),
        good,
    ]
    put(batch, bucket, "inputs/digits/mixed.jsonl", "\n".join(lines).encode())
    manifest = batch.process(bucket, "inputs/digits/mixed.jsonl")
    assert manifest.rows_in == len(lines) == manifest.rows_out + manifest.rows_failed
    assert (manifest.rows_out, manifest.rows_failed) == (4, 4)
    errors = [json.loads(line) for line in get(batch, bucket, manifest.errors).decode().splitlines()]
    assert [e["row"] for e in errors] == [1, 3, 4, 6]
    assert "needs 64 values per row, got 63" in errors[1]["error"]
    assert "missing input 'input'" in errors[2]["error"]
    outputs = [json.loads(line)["row"] for line in get(batch, bucket, manifest.output).decode().splitlines()]
    assert outputs == [0, 2, 5, 7]


def test_rows_are_checked_as_the_oip_api_checks_tensors(
    batch: BatchProcessor, dynamo_registry: Registry
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    lines = ["[" + ",".join(["1"] * 63) + ",NaN]", json.dumps([1.0] * 64), json.dumps([True] * 64)]
    put(batch, bucket, "inputs/digits/checked.jsonl", "\n".join(lines).encode())
    manifest = batch.process(bucket, "inputs/digits/checked.jsonl")
    assert (manifest.rows_out, manifest.rows_failed) == (1, 2)
    errors = [json.loads(line) for line in get(batch, bucket, manifest.errors).decode().splitlines()]
    assert [e["row"] for e in errors] == [0, 2]
    assert "element 63 is nan; FP32 inputs must be finite numbers" in errors[0]["error"]
    assert "datatype FP32 takes numbers only" in errors[1]["error"]


def test_an_alias_or_version_in_the_path_chooses_what_serves(
    batch: BatchProcessor, dynamo_registry: Registry
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    body = json.dumps(
        {"inputs": [{"name": "a", "data": [1, 2, 3]}, {"name": "b", "data": [1, 1, 1]}]}
    ).encode()
    put(batch, bucket, "inputs/sum/1/x.jsonl", body)
    put(batch, bucket, "inputs/sum/prod/x.jsonl", body)
    put(batch, bucket, "inputs/sum/2024/x.jsonl", body)
    assert batch.process(bucket, "inputs/sum/1/x.jsonl").version == "1"
    assert batch.process(bucket, "inputs/sum/prod/x.jsonl").version == "2"
    plain_folder = batch.process(bucket, "inputs/sum/2024/x.jsonl")
    assert (plain_folder.version, plain_folder.output) == ("2", "outputs/sum/2024/x.jsonl")


def test_a_version_drawn_beforehand_is_the_one_that_runs(
    batch: BatchProcessor, dynamo_registry: Registry
) -> None:
    # Under a canary the SQS side draws the version once (it keys idempotency on it); the
    # processor must run that version, not draw again.
    bucket = dynamo_registry.artifacts.bucket
    dynamo_registry.canary("sum", "prod", {1: 50, 2: 50})
    body = json.dumps(
        {"inputs": [{"name": "a", "data": [1, 2, 3]}, {"name": "b", "data": [1, 1, 1]}]}
    ).encode()
    put(batch, bucket, "inputs/sum/x.jsonl", body)
    for version in ("1", "2", "1", "2"):
        assert batch.process(bucket, "inputs/sum/x.jsonl", model_version=version).version == version


@pytest.mark.parametrize(
    ("key", "error", "message"),
    [
        ("inputs/nope/x.jsonl", ModelNotFound, "model 'nope' not found"),
        ("inputs/digits/x.parquet", InvalidInput, "not a batch file maas reads"),
        ("elsewhere/digits/x.jsonl", InvalidInput, "batch inputs live under inputs/"),
        ("inputs/digits/../x.jsonl", InvalidInput, "must look like inputs/<model>"),
    ],
)
def test_a_file_that_cannot_be_processed_says_why(
    batch: BatchProcessor, dynamo_registry: Registry, key: str, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        batch.process(dynamo_registry.artifacts.bucket, key)


def test_a_sagemaker_model_is_refused_with_a_clear_error(
    batch: BatchProcessor, dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    dynamo_registry.register("large", artifacts["sum"], target="sagemaker")
    dynamo_registry.promote("large", "prod", 1)
    with pytest.raises(
        InvalidInput, match="targets sagemaker; batch files for SageMaker endpoints are not supported yet"
    ):
        batch.process(dynamo_registry.artifacts.bucket, "inputs/large/x.jsonl")


MEMORY_PROBE = """
import json, os, resource, sys
import boto3
from maas.batch import BatchProcessor
from maas.dataplane import DataPlane
from maas.sources import DirectorySource
endpoint, bucket, models = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
plane = DataPlane(DirectorySource(models))
plane.preload(["digits"])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
manifest = BatchProcessor(plane, s3).process(bucket, "inputs/digits/big.jsonl")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows_out": manifest.rows_out, "growth_kb": after - before}))
"""
# What 100,000 rows of 64 numbers would take if held at once as Python lists is about
# 60 MB; streaming in chunks of 1,024 must stay far below.
MEMORY_BOUND_MB = 40


def test_a_100000_row_file_is_processed_in_bounded_memory(
    dynamo_registry: Registry, aws_endpoint: str, model_dir: Path, tmp_path: Path
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 17, size=(100_000, 64))
    body = "\n".join(json.dumps(row) for row in rows.tolist()).encode()
    dynamo_registry.artifacts.client.put_object(Bucket=bucket, Key="inputs/digits/big.jsonl", Body=body)
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, aws_endpoint, bucket, str(model_dir)],
        capture_output=True, text=True, check=False, env=os.environ, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["rows_out"] == 100_000
    assert result["growth_kb"] / 1024 < MEMORY_BOUND_MB, result


def test_a_folder_that_is_not_an_alias_or_version_is_an_ordinary_folder(
    batch: BatchProcessor, dynamo_registry: Registry
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    put(batch, bucket, "inputs/digits/2024 q1/x.jsonl", json.dumps([1.0] * 64).encode())
    manifest = batch.process(bucket, "inputs/digits/2024 q1/x.jsonl")
    assert (manifest.version, manifest.output, manifest.rows_out) == (
        "1",
        "outputs/digits/2024 q1/x.jsonl",
        1,
    )


def test_a_csv_field_over_the_csv_modules_limit_fails_its_row_not_the_file(
    batch: BatchProcessor, dynamo_registry: Registry
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    good = ",".join(["1"] * 64)
    huge = "9" * (csv.field_size_limit() + 1) + "," + ",".join(["1"] * 63)
    body = "\n".join([",".join(f"p{i}" for i in range(64)), good, huge, good]).encode()
    put(batch, bucket, "inputs/digits/huge-field.csv", body)
    manifest = batch.process(bucket, "inputs/digits/huge-field.csv")
    assert (manifest.rows_in, manifest.rows_out, manifest.rows_failed) == (3, 2, 1)
    errors = [json.loads(line) for line in get(batch, bucket, str(manifest.errors)).decode().splitlines()]
    assert errors[0]["row"] == 1 and "field larger than field limit" in errors[0]["error"]
    table = list(csv.reader(io.StringIO(get(batch, bucket, manifest.output).decode())))
    assert [r[0] for r in table[1:]] == ["0", "2"]


def test_csv_columns_feed_string_and_integer_inputs(
    batch: BatchProcessor, dynamo_registry: Registry, tmp_path: Path
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    dynamo_registry.register("text", fakes.text_model(tmp_path / "text.onnx"))
    dynamo_registry.promote("text", "prod", 1)
    body = b'text,count\nhello,2\n"a, quoted one",5\nnot a number,x\n'
    put(batch, bucket, "inputs/text/words.csv", body)
    manifest = batch.process(bucket, "inputs/text/words.csv")
    assert (manifest.rows_in, manifest.rows_out, manifest.rows_failed) == (3, 2, 1)
    table = list(csv.reader(io.StringIO(get(batch, bucket, manifest.output).decode())))
    assert table == [["row", "echo", "doubled"], ["0", "hello", "4"], ["1", "a, quoted one", "10"]]
    errors = get(batch, bucket, str(manifest.errors)).decode()
    assert "input 'count' takes numbers, not 'x'" in errors


@pytest.mark.parametrize("fixed", [1, 8])
def test_a_model_with_a_fixed_first_dimension_gets_rows_grouped_to_fit(
    batch: BatchProcessor, dynamo_registry: Registry, tmp_path: Path, fixed: int
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    dynamo_registry.register("fixed", fakes.fixed_rows_model(tmp_path / "fixed.onnx", fixed))
    dynamo_registry.promote("fixed", "prod", 1)
    lines = [json.dumps([float(n)] * 4) for n in range(21)]
    lines[10] = json.dumps([1.0] * 3)  # one unreadable row in the middle shortens its group
    put(batch, bucket, "inputs/fixed/rows.jsonl", "\n".join(lines).encode())
    manifest = batch.process(bucket, "inputs/fixed/rows.jsonl")
    assert (manifest.rows_in, manifest.rows_out, manifest.rows_failed) == (21, 20, 1)
    records = [json.loads(line) for line in get(batch, bucket, manifest.output).decode().splitlines()]
    assert {r["row"]: r["outputs"]["total"] for r in records} == {n: 4.0 * n for n in range(21) if n != 10}


def test_a_model_whose_inputs_disagree_on_their_first_dimension_is_refused_naming_the_shapes(
    batch: BatchProcessor, dynamo_registry: Registry, tmp_path: Path
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    dynamo_registry.register("mixed", fakes.mixed_rows_model(tmp_path / "mixed.onnx"))
    dynamo_registry.promote("mixed", "prod", 1)
    put(batch, bucket, "inputs/mixed/rows.jsonl", b"[]")
    with pytest.raises(InvalidInput, match=r"different first dimensions \('a' \[8, 4\], 'b' \[1, 4\]\)"):
        batch.process(bucket, "inputs/mixed/rows.jsonl")


def test_a_line_nested_too_deeply_for_json_fails_alone(
    batch: BatchProcessor, dynamo_registry: Registry
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    good = json.dumps([1.0] * 64)
    nested = "[" * 200_000 + "]" * 200_000
    put(batch, bucket, "inputs/digits/nested.jsonl", "\n".join([good, nested, good]).encode())
    manifest = batch.process(bucket, "inputs/digits/nested.jsonl")
    assert (manifest.rows_in, manifest.rows_out, manifest.rows_failed) == (3, 2, 1)
    assert "nested too deeply" in get(batch, bucket, str(manifest.errors)).decode()


def test_npz_outputs_name_the_row_of_each_prediction_so_a_failed_row_shifts_nothing(
    batch: BatchProcessor, dynamo_registry: Registry
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    _, rows, _, _ = digits_split()
    rows = rows[:10].astype(np.float32).copy()
    rows[2, 5] = np.nan  # row 2 is refused
    buffer = io.BytesIO()
    np.save(buffer, rows)
    put(batch, bucket, "inputs/digits/partial.npy", buffer.getvalue())
    manifest = batch.process(bucket, "inputs/digits/partial.npy")
    assert (manifest.rows_out, manifest.rows_failed) == (9, 1)
    expected = dict(
        zip([0, 1, *range(3, 10)], oip_labels(batch.dataplane, np.delete(rows, 2, axis=0)), strict=True)
    )
    with np.load(io.BytesIO(get(batch, bucket, manifest.output))) as result:
        assert result["row"].tolist() == [0, 1, 3, 4, 5, 6, 7, 8, 9]
        assert dict(zip(result["row"].tolist(), result["label"].tolist(), strict=True)) == expected


def test_csv_vector_columns_are_taken_by_their_index_not_their_order_in_the_header(
    batch: BatchProcessor, dynamo_registry: Registry
) -> None:
    bucket = dynamo_registry.artifacts.bucket
    put(batch, bucket, "inputs/sum/shuffled.csv", b"a_2,a_1,a_0,b_0,b_1,b_2\n30,20,10,1,2,3\n")
    manifest = batch.process(bucket, "inputs/sum/shuffled.csv")
    table = list(csv.reader(io.StringIO(get(batch, bucket, manifest.output).decode())))
    header, values = table[0], table[1]
    assert dict(zip(header, values, strict=True))["sum_0"] == "11.0"  # a_0 + b_0 = 10 + 1
    put(batch, bucket, "inputs/sum/gap.csv", b"a_0,a_1,a_10,b_0,b_1,b_2\n1,2,3,4,5,6\n")
    with pytest.raises(InvalidInput, match=r"numbered a_0 to a_2, got indices \[0, 1, 10\]"):
        batch.process(bucket, "inputs/sum/gap.csv")
