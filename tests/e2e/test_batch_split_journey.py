"""A batch file larger than a part on `maas dev`: submitted with the CLI, split into parts that
run through the embedded batch queue, followed with `maas batch status`, fetched whole with
`maas batch get`; every row comes back once, and every part runs once even when its message
is delivered twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maas.local.demo import digits_split
from tests.e2e.conftest import DevServer, running_dev_server

pytestmark = pytest.mark.e2e

ROWS = 1000
PART_MB = "0.03"  # about 31 KB: the 1,000-row file (about 300 KB) makes 10 parts
BUCKET = "maas-artifacts"


@pytest.fixture(scope="module")
def split_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MAAS_BATCH_PART_MB", PART_MB)  # inherited by maas dev and its batch workers
        with running_dev_server(tmp_path_factory.mktemp("split-models")) as server:
            yield server


def cli(server: DevServer, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maas.cli", "batch", *args],
        env={**os.environ, "AWS_ENDPOINT_URL": server.aws_endpoint},
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def client(server: DevServer, service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=server.aws_endpoint, region_name="us-east-1")


def wait_for(condition: Any, what: str, seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def queue_is_empty(sqs: Any, url: str) -> bool:
    counts = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return all(int(value) == 0 for value in counts.values())


def test_a_file_split_into_parts_comes_back_whole_and_each_part_runs_once(
    split_server: DevServer, tmp_path: Path
) -> None:
    _, rows, _, _ = digits_split()
    rows = rows[:ROWS] if len(rows) >= ROWS else rows[[n % len(rows) for n in range(ROWS)]]
    inputs = tmp_path / "many-rows.jsonl"
    inputs.write_text("".join(json.dumps(row) + "\n" for row in rows.tolist()))
    key = "inputs/digits/many-rows.jsonl"
    s3, sqs = client(split_server, "s3"), client(split_server, "sqs")
    queue = sqs.get_queue_url(QueueName="maas-batch")["QueueUrl"]

    submitted = cli(split_server, "submit", str(inputs), "--model", "digits", "--no-wait")
    assert submitted.returncode == 0, submitted.stderr
    # The plan lands first; every part's message is delivered a second time while the parts run.
    plan_key = wait_for(
        lambda: next(
            (
                item["Key"]
                for item in s3.list_objects_v2(
                    Bucket=BUCKET, Prefix="outputs/digits/many-rows.jsonl.parts/"
                ).get("Contents", [])
                if item["Key"].endswith("/plan.json")
            ),
            None,
        ),
        "the plan",
    )
    messages = json.loads(s3.get_object(Bucket=BUCKET, Key=plan_key)["Body"].read())["messages"]
    assert len(messages) >= 8
    for message in messages:
        sqs.send_message(QueueUrl=queue, MessageBody=message)

    def done() -> dict[str, Any] | None:
        status = cli(split_server, "status", key, "--json", timeout=60)
        assert status.returncode == 0, status.stderr
        found: dict[str, Any] = json.loads(status.stdout)
        return found if found["state"] == "done" else None

    manifest = wait_for(done, "the manifest", seconds=240)["manifest"]
    assert (manifest["rows_in"], manifest["rows_out"], manifest["rows_failed"]) == (ROWS, ROWS, 0)
    assert len(manifest["parts"]) == len(messages)
    assert sum(part["rows_in"] for part in manifest["parts"]) == ROWS
    assert [part["first_row"] for part in manifest["parts"]] == sorted(
        part["first_row"] for part in manifest["parts"]
    )

    for message in messages:  # and a third time, after the file is done
        sqs.send_message(QueueUrl=queue, MessageBody=message)
    wait_for(lambda: queue_is_empty(sqs, queue), "the queue to drain")
    time.sleep(2)  # a part taken just before the queue looked empty finishes
    wait_for(lambda: queue_is_empty(sqs, queue), "the queue to drain")

    # The bucket is versioned: a part that ran twice would have written its output twice.
    run = plan_key[: -len("plan.json")]
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=run).get("Versions", [])
    outputs = [version["Key"] for version in versions if not version["Key"].endswith("plan.json")]
    assert len(outputs) == len(messages) and len(set(outputs)) == len(messages)
    manifest_versions = s3.list_object_versions(
        Bucket=BUCKET, Prefix="outputs/digits/many-rows.jsonl.manifest.json"
    ).get("Versions", [])
    assert len(manifest_versions) == 1

    fetched = cli(split_server, "get", key, "-o", str(tmp_path / "results"))
    assert fetched.returncode == 0, fetched.stderr
    lines = (tmp_path / "results" / "outputs/digits/many-rows.jsonl").read_text().splitlines()
    assert [json.loads(line)["row"] for line in lines] == list(range(ROWS))
