"""Batch inference on `maas dev`: a file uploaded with the CLI comes back predicted, with the
same answers the OIP API gives for the same rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from maas.local.demo import digits_split
from tests.e2e.conftest import DevServer

pytestmark = pytest.mark.e2e


def test_a_jsonl_file_of_digits_comes_back_with_the_oip_answers(
    dev_server: DevServer, tmp_path: Path
) -> None:
    _, rows, _, _ = digits_split()
    rows = rows[:200]  # one chunk: the same batch the OIP request below sends
    inputs = tmp_path / "digits-rows.jsonl"
    inputs.write_text("\n".join(json.dumps(row) for row in rows.tolist()))
    done = subprocess.run(
        [sys.executable, "-m", "maas.cli", "batch", "submit", str(inputs), "--model", "digits", "--timeout", "60"],
        env={**os.environ, "AWS_ENDPOINT_URL": dev_server.aws_endpoint},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert (manifest["rows_in"], manifest["rows_out"], manifest["rows_failed"]) == (200, 200, 0)

    import boto3

    s3 = boto3.client("s3", endpoint_url=dev_server.aws_endpoint, region_name="us-east-1")
    body = s3.get_object(Bucket="maas-artifacts", Key=manifest["output"])["Body"].read().decode()
    batch_labels = [json.loads(line)["outputs"]["label"] for line in body.splitlines()]

    request = json.dumps(
        {"inputs": [{"name": "input", "shape": [200, 64], "datatype": "FP32", "data": rows.tolist()}]}
    )
    with urllib.request.urlopen(
        urllib.request.Request(
            f"{dev_server.url}/v2/models/digits/infer", data=request.encode(), method="POST"
        ),
        timeout=30,
    ) as response:
        outputs = {o["name"]: o for o in json.loads(response.read())["outputs"]}
    assert batch_labels == outputs["label"]["data"]


def submit(dev_server: DevServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maas.cli", "batch", "submit", *args, "--timeout", "60"],
        env={**os.environ, "AWS_ENDPOINT_URL": dev_server.aws_endpoint},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_file_for_a_model_that_does_not_exist_returns_at_once_with_the_reason(
    dev_server: DevServer, tmp_path: Path
) -> None:
    inputs = tmp_path / "rows.jsonl"
    inputs.write_text(json.dumps([0.0] * 64))
    started = time.monotonic()
    done = submit(dev_server, str(inputs), "--model", "no-such-model")
    assert done.returncode == 2, done.stderr
    assert "was not processed: model 'no-such-model' not found" in done.stderr
    assert time.monotonic() - started < 30  # the manifest says so; nobody waits out --timeout
    assert json.loads(done.stdout)["status"] == "failed"


def test_a_file_uploaded_again_is_processed_again(dev_server: DevServer, tmp_path: Path) -> None:
    inputs = tmp_path / "again.jsonl"
    inputs.write_text(json.dumps([0.0] * 64))
    first = submit(dev_server, str(inputs), "--model", "digits")
    assert first.returncode == 0, first.stderr
    inputs.write_text("\n".join([json.dumps([0.0] * 64)] * 3))
    second = submit(dev_server, str(inputs), "--model", "digits")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["rows_in"] == 3
    third = submit(dev_server, str(inputs), "--model", "digits")  # the same bytes once more
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["rows_in"] == 3


def test_an_alias_that_does_not_exist_is_reported_not_silently_replaced_by_prod(
    dev_server: DevServer, tmp_path: Path
) -> None:
    inputs = tmp_path / "staging-rows.jsonl"
    inputs.write_text(json.dumps([0.0] * 64))
    done = submit(dev_server, str(inputs), "--model", "digits", "--alias", "no-such-alias")
    assert done.returncode == 2, done.stderr
    assert "'no-such-alias' is no alias or version of model 'digits'" in done.stderr
    started = time.monotonic()
    refused = submit(dev_server, str(inputs), "--model", "digits", "--alias", "..")
    assert refused.returncode == 2 and "alias '..' is not valid" in refused.stderr, refused.stderr
    assert time.monotonic() - started < 20  # refused before uploading, nothing to wait for
