"""A batch file larger than a part runs as parts through the batch queue: its rows come back
exactly once each, with the row numbers, predictions and errors an unsplit run gives, whatever
happens to the part messages (delivered twice, several in one batch, a part that fails once,
a re-upload while parts run)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maas.batch import split as split_module
from maas.batch.processor import BatchProcessor
from maas.batch.progress import PartProgress
from maas.batch.split import PartJob, Splitter, default_part_bytes
from maas.batch.sqs import SqsBatchHandler
from maas.local.context import LocalLambdaContext
from maas.local.demo import build_digits_onnx
from maas.local.trigger import SqsTrigger
from maas.registry import Registry
from tests.functional.conftest import upload

# The digits MLP before quantization: dynamic quantization makes a row's probabilities depend on
# the rows predicted with it, and parts group rows differently than a whole run does.
KEY = "inputs/exact/big.jsonl"
MANIFEST = "outputs/exact/big.jsonl.manifest.json"


@pytest.fixture(scope="module")
def exact_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exact") / "model.onnx"
    build_digits_onnx(path, quantize=False)
    return path


@pytest.fixture
def split_env(
    wiring: dict[str, Any], dynamo_registry: Registry, exact_model: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The batch wiring with a splitter cutting anything over 2,000 bytes, and model `exact`."""
    import boto3

    dynamo_registry.register("exact", exact_model)
    dynamo_registry.promote("exact", "prod", 1)

    monkeypatch.setenv("AWS_ENDPOINT_URL", wiring["endpoint"])  # Powertools' idempotency client
    processor: BatchProcessor = wiring["handler"].processor
    table = "idempotency-" + wiring["bucket"].split("-")[-1]
    dynamodb = boto3.client("dynamodb", endpoint_url=wiring["endpoint"], region_name="us-east-1")
    splitter = Splitter(
        processor,
        sqs=wiring["sqs"],
        queue_url=wiring["queue"],
        progress=PartProgress(table, dynamodb),
        part_bytes=2_000,
    )
    handler = SqsBatchHandler(processor, table, splitter=splitter)
    runs: list[tuple[str, int]] = []
    real = split_module.process_part

    def counted(processor: BatchProcessor, part: PartJob) -> Any:
        runs.append((part.job_id, part.index))
        return real(processor, part)

    monkeypatch.setattr(split_module, "process_part", counted)
    return {**wiring, "handler": handler, "splitter": splitter, "runs": runs, "table": table}


def drain(env: dict[str, Any], *, most: int = 200) -> int:
    """Runs the queue as Lambda's event source mapping would until it is empty; invocations made."""
    trigger = SqsTrigger(env["sqs"], env["queue"], lambda event: env["handler"](event, LocalLambdaContext()))
    invocations = 0
    while invocations < most and trigger.poll_once(wait_seconds=0):
        invocations += 1
    return invocations


def send(env: dict[str, Any], body: str) -> None:
    env["sqs"].send_message(QueueUrl=env["queue"], MessageBody=body)


def submit(env: dict[str, Any], key: str, body: bytes) -> None:
    """Uploads `body` to `key` and queues the notification S3 sends for it."""
    send(env, upload(env, key, body))


def read(env: dict[str, Any], key: str) -> bytes:
    return bytes(env["s3"].get_object(Bucket=env["bucket"], Key=key)["Body"].read())


def manifest(env: dict[str, Any], key: str = MANIFEST) -> dict[str, Any]:
    return json.loads(read(env, key))


def unsplit(env: dict[str, Any], key: str, body: bytes) -> tuple[bytes, bytes]:
    """The outputs and errors of the same bytes run whole (the reference)."""
    processor: BatchProcessor = env["handler"].processor
    reference = key.replace("inputs/exact/", "inputs/exact/reference-")
    env["s3"].put_object(Bucket=env["bucket"], Key=reference, Body=body)
    done = processor.process(env["bucket"], reference)
    errors = read(env, done.errors) if done.errors else b""
    assert done.output is not None
    return read(env, done.output), errors


def fetched(env: dict[str, Any], key: str, directory: Path) -> tuple[bytes, bytes]:
    """What `maas batch get KEY` writes: the split file's outputs and errors joined, one file each."""
    from maas.cli import main

    found = manifest(env, "outputs/" + key[len("inputs/") :].replace(".npy", ".npz") + ".manifest.json")
    assert (
        main(
            [
                "batch",
                "get",
                key,
                "-o",
                str(directory),
                "--endpoint-url",
                env["endpoint"],
                "--bucket",
                env["bucket"],
            ]
        )
        == 0
    )
    output = directory / found["input"].replace("inputs/", "outputs/", 1).replace(".npy", ".npz")
    errors = directory / (found["input"].replace("inputs/", "errors/", 1) + ".errors.jsonl")
    return output.read_bytes(), errors.read_bytes() if errors.exists() else b""


def jsonl_rows(count: int, *, bad: tuple[int, ...] = ()) -> bytes:
    lines = []
    for number in range(count):
        lines.append("not json" if number in bad else json.dumps([float((number * 7) % 17)] * 64))
    return ("\n".join(lines) + "\n").encode()


def test_a_file_split_into_8_parts_gives_exactly_its_rows_once_each(
    split_env: dict[str, Any], tmp_path: Path
) -> None:
    body = jsonl_rows(300, bad=(0, 41, 299))  # about 57 KB: 29 parts of 2 KB
    submit(split_env, KEY, body)
    drain(split_env)
    found = manifest(split_env)
    assert len(found["parts"]) >= 8
    assert (found["rows_in"], found["rows_out"], found["rows_failed"]) == (300, 297, 3)
    assert sum(part["rows_in"] for part in found["parts"]) == 300
    # Each part ran once, and together they hold the unsplit run's outputs and errors, byte for byte.
    assert sorted(split_env["runs"]) == sorted({run for run in split_env["runs"]})
    assert len(split_env["runs"]) == len(found["parts"])
    outputs, errors = unsplit(split_env, KEY, body)
    assert fetched(split_env, KEY, tmp_path) == (outputs, errors)
    rows = [json.loads(line)["row"] for line in outputs.splitlines()]
    assert rows == [n for n in range(300) if n not in (0, 41, 299)]
    assert found["status"] == "succeeded" and found["output"].endswith("/")


def test_each_part_runs_once_when_its_message_is_delivered_twice(split_env: dict[str, Any]) -> None:
    body = jsonl_rows(120)
    submit(split_env, KEY, body)
    drain(split_env, most=1)  # the notification: planned, parts queued
    plan_key = next(
        item["Key"]
        for item in split_env["s3"].list_objects_v2(Bucket=split_env["bucket"], Prefix="outputs/")["Contents"]
        if item["Key"].endswith("plan.json")
    )
    messages = json.loads(read(split_env, plan_key))["messages"]
    assert len(messages) >= 8
    for message in messages:  # every part's message twice while the parts run...
        send(split_env, message)
    drain(split_env)
    first = manifest(split_env)
    for message in messages:  # ...and once more after the file is done
        send(split_env, message)
    drain(split_env)
    assert len(split_env["runs"]) == len(messages) == len(set(split_env["runs"]))
    assert manifest(split_env) == first
    assert (first["rows_in"], first["rows_out"]) == (120, 120)


def test_a_batch_of_several_parts_runs_one_and_sends_the_others_back(split_env: dict[str, Any]) -> None:
    submit(split_env, KEY, jsonl_rows(60))
    drain(split_env, most=1)
    plan = [
        item["Key"]
        for item in split_env["s3"].list_objects_v2(Bucket=split_env["bucket"], Prefix="outputs/")["Contents"]
        if item["Key"].endswith("plan.json")
    ]
    parts = len(json.loads(read(split_env, plan[0]))["messages"])
    trigger = SqsTrigger(
        split_env["sqs"], split_env["queue"], lambda event: split_env["handler"](event, LocalLambdaContext())
    )
    received = trigger.poll_once(wait_seconds=0)
    assert received > 1  # SQS handed over several part messages at once
    assert len(split_env["runs"]) == 1  # only one ran in this invocation
    waiting = split_env["sqs"].get_queue_attributes(
        QueueUrl=split_env["queue"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert int(waiting) == parts - 1  # the others are back on the queue, each once
    drain(split_env)
    assert manifest(split_env)["rows_in"] == 60


def test_a_part_that_fails_once_is_retried_and_every_row_still_lands_once(
    split_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from maas.errors import BackendUnavailable

    real = split_module.process_part
    failures = {"left": 1}

    def flaky(processor: BatchProcessor, part: PartJob) -> Any:
        if part.index == 3 and failures["left"]:
            failures["left"] -= 1
            raise BackendUnavailable("S3 is not answering")
        return real(processor, part)

    monkeypatch.setattr(split_module, "process_part", flaky)
    body = jsonl_rows(200, bad=(7,))
    submit(split_env, KEY, body)
    for _ in range(10):  # the failed part comes back after its visibility timeout (1 s here)
        drain(split_env)
        if split_env["s3"].list_objects_v2(Bucket=split_env["bucket"], Prefix=MANIFEST).get("KeyCount"):
            break
        import time

        time.sleep(1.2)
    found = manifest(split_env)
    assert (found["rows_in"], found["rows_out"], found["rows_failed"]) == (200, 199, 1)
    assert fetched(split_env, KEY, tmp_path) == unsplit(split_env, KEY, body)


def test_a_re_upload_while_parts_run_leaves_the_newer_uploads_results(split_env: dict[str, Any]) -> None:
    split_env["s3"].put_bucket_versioning(
        Bucket=split_env["bucket"], VersioningConfiguration={"Status": "Enabled"}
    )
    submit(split_env, KEY, jsonl_rows(100))
    drain(split_env, most=2)  # planned, and one part of the first upload run
    submit(split_env, KEY, jsonl_rows(150))  # replaced while its parts wait
    drain(split_env)
    found = manifest(split_env)
    assert (found["rows_in"], found["rows_out"]) == (150, 150)
    head = split_env["s3"].head_object(Bucket=split_env["bucket"], Key=KEY)
    assert found["input_version"] == head["VersionId"]


def test_csv_with_quoted_newlines_crlf_and_no_final_newline_splits_at_record_ends(
    split_env: dict[str, Any],
    tmp_path: Path,
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([f"x_{i}" for i in range(64)])
    for number in range(150):
        row: list[Any] = [float((number * 3) % 17)] * 64
        if number % 10 == 4:
            row[5] = "not\na number"  # a quoted field with a line end inside: that row fails alone
        writer.writerow(row)
    body = buffer.getvalue().rstrip("\r\n").encode()  # the last record without a line end
    key = "inputs/exact/big.csv"
    submit(split_env, key, body)
    drain(split_env)
    found = manifest(split_env, "outputs/exact/big.csv.manifest.json")
    assert len(found["parts"]) >= 8
    assert (found["rows_in"], found["rows_out"], found["rows_failed"]) == (150, 135, 15)
    assert fetched(split_env, key, tmp_path) == unsplit(split_env, key, body)


def test_a_npy_file_splits_by_rows(split_env: dict[str, Any], tmp_path: Path) -> None:
    rows = (np.arange(200 * 64, dtype=np.float32).reshape(200, 64) % 17).astype(np.float32)
    rows[13, 0] = np.nan  # fails alone, as unsplit
    buffer = io.BytesIO()
    np.save(buffer, rows)
    key = "inputs/exact/big.npy"
    submit(split_env, key, buffer.getvalue())
    drain(split_env)
    found = manifest(split_env, "outputs/exact/big.npz.manifest.json")
    assert len(found["parts"]) >= 8
    assert (found["rows_in"], found["rows_out"], found["rows_failed"]) == (200, 199, 1)
    joined_bytes, errors = fetched(split_env, key, tmp_path)
    expected_bytes, expected_errors = unsplit(split_env, key, buffer.getvalue())
    joined, expected = np.load(io.BytesIO(joined_bytes)), np.load(io.BytesIO(expected_bytes))
    assert sorted(joined.files) == sorted(expected.files) == ["label", "probabilities", "row"]
    for name in expected.files:
        assert np.array_equal(joined[name], expected[name])
    assert errors == expected_errors


def test_a_line_longer_than_a_part_makes_fewer_parts_and_loses_nothing(
    split_env: dict[str, Any], tmp_path: Path
) -> None:
    lines = (
        [json.dumps([1.0] * 64)] * 10 + [json.dumps([0.123456789] * 64 * 4)] + [json.dumps([2.0] * 64)] * 40
    )
    body = ("\n".join(lines)).encode()  # a 4-row-wide line (fails: 256 values) and no final newline
    submit(split_env, KEY, body)
    drain(split_env)
    found = manifest(split_env)
    assert (found["rows_in"], found["rows_out"], found["rows_failed"]) == (51, 50, 1)
    assert fetched(split_env, KEY, tmp_path) == unsplit(split_env, KEY, body)


@pytest.mark.parametrize("body", [b"", b"\n\n", jsonl_rows(3)], ids=["empty", "blank-lines", "small"])
def test_a_file_no_larger_than_a_part_runs_whole_as_before(split_env: dict[str, Any], body: bytes) -> None:
    submit(split_env, KEY, body)
    drain(split_env)
    found = manifest(split_env)
    assert "parts" not in found
    assert found["output"] == "outputs/exact/big.jsonl"
    assert split_env["runs"] == []


def test_the_default_part_is_what_half_the_timeout_gets_through_within_a_share_of_tmp() -> None:
    mb = 1024 * 1024
    assert default_part_bytes(900, 10_240 * mb) == int(900 * 0.5 * split_module.MEASURED_BYTES_PER_SECOND)
    assert default_part_bytes(900, 512 * mb) == int(512 * mb * 0.3)  # Lambda's default /tmp
    assert default_part_bytes(0.1, 512 * mb) == mb  # never below 1 MB


def test_the_splitter_is_wired_from_the_settings(split_env: dict[str, Any]) -> None:
    from maas.batch.wiring import sqs_handler
    from maas.settings import PredictSettings

    plane = split_env["handler"].processor.dataplane
    settings = PredictSettings(
        idempotency_table=split_env["table"], batch_queue_url=split_env["queue"], batch_part_mb=0.002
    )
    handler = sqs_handler(plane, settings)
    assert handler.splitter is not None and handler.splitter.part_bytes(900) == int(0.002 * 1024 * 1024)
    assert sqs_handler(plane, PredictSettings(idempotency_table=split_env["table"])).splitter is None


def test_status_counts_the_parts_done_while_a_split_file_runs(
    split_env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from maas.cli import main

    split_env["s3"].put_bucket_versioning(
        Bucket=split_env["bucket"], VersioningConfiguration={"Status": "Enabled"}
    )
    submit(split_env, KEY, jsonl_rows(100))
    drain(split_env, most=2)  # planned, and one part run
    capsys.readouterr()
    arguments = ["--endpoint-url", split_env["endpoint"], "--bucket", split_env["bucket"]]
    assert main(["batch", "status", KEY, "--json", *arguments]) == 0
    pending = json.loads(capsys.readouterr().out)
    assert pending["state"] == "pending"
    assert pending["progress"]["parts_done"] == 1 and pending["progress"]["parts"] >= 8
    assert main(["batch", "status", KEY, *arguments]) == 0
    assert f"1 of {pending['progress']['parts']} parts done" in capsys.readouterr().out
    drain(split_env)
    capsys.readouterr()
    assert main(["batch", "status", KEY, "--json", *arguments]) == 0
    done = json.loads(capsys.readouterr().out)
    assert (done["state"], done["manifest"]["rows_in"], "progress" in done) == ("done", 100, False)


def test_a_part_whose_run_died_after_writing_its_outputs_runs_again_and_counts_once(
    split_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    progress: PartProgress = split_env["splitter"].progress
    real = progress.finish
    deaths = {"left": 1}

    def dies_once(job_id: str, index: int, result: dict[str, Any]) -> Any:
        if index == 2 and deaths["left"]:
            deaths["left"] -= 1
            raise RuntimeError("the invocation was killed")  # after the part's files were written
        return real(job_id, index, result)

    monkeypatch.setattr(progress, "finish", dies_once)
    body = jsonl_rows(150, bad=(3, 77))
    submit(split_env, KEY, body)
    for _ in range(10):
        drain(split_env)
        if split_env["s3"].list_objects_v2(Bucket=split_env["bucket"], Prefix=MANIFEST).get("KeyCount"):
            break
        import time

        time.sleep(1.2)
    found = manifest(split_env)
    assert [index for _, index in split_env["runs"]].count(2) == 2  # it really ran twice
    assert (found["rows_in"], found["rows_out"], found["rows_failed"]) == (150, 148, 2)
    assert fetched(split_env, KEY, tmp_path) == unsplit(split_env, KEY, body)


def test_a_part_that_can_never_run_fails_the_file_naming_the_part(
    split_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from maas.errors import ModelNotFound

    real = split_module.process_part

    def retired(processor: BatchProcessor, part: PartJob) -> Any:
        if part.index == 4:
            raise ModelNotFound("model 'exact' version 1 was retired")
        return real(processor, part)

    monkeypatch.setattr(split_module, "process_part", retired)
    submit(split_env, KEY, jsonl_rows(100))
    drain(split_env)
    found = manifest(split_env)
    assert found["status"] == "failed"
    assert found["reason"].startswith("part 5 of ") and "was retired" in found["reason"]


def test_a_npy_of_no_rows_runs_whole(split_env: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((0, 64), dtype=np.float32))
    submit(split_env, "inputs/exact/none.npy", buffer.getvalue())
    drain(split_env)
    found = manifest(split_env, "outputs/exact/none.npz.manifest.json")
    assert (found["rows_in"], "parts" in found, split_env["runs"]) == (0, False, [])
