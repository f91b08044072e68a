"""`maas batch status|list|get`: a user who submitted a file follows it without waiting on
`submit`: pending until the batch side has run its latest upload, then done (with its
counts) or failed (with the reason), and downloads its outputs and manifest as S3 holds them.
The batch side is the real one: the SQS handler the predict function runs, on moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maas.cli import main
from maas.local.context import LocalLambdaContext
from tests.functional.conftest import notification


def batch(capsys: pytest.CaptureFixture[str], wiring: dict[str, Any], *args: str) -> tuple[int, str, str]:
    code = main(["batch", *args, "--endpoint-url", wiring["endpoint"], "--bucket", wiring["bucket"]])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_batch_side(capsys: pytest.CaptureFixture[str], wiring: dict[str, Any], key: str) -> None:
    """What S3 and SQS do after an upload: notify the predict function, which runs the file."""
    head = wiring["s3"].head_object(Bucket=wiring["bucket"], Key=key)
    body = notification(wiring["bucket"], key, etag=head["ETag"].strip('"'), version_id=head.get("VersionId"))
    event = {"Records": [{"messageId": "m", "receiptHandle": "r", "body": body, "eventSource": "aws:sqs",
                          "attributes": {}, "messageAttributes": {}}]}  # fmt: skip
    assert wiring["handler"](event, LocalLambdaContext()) == {"batchItemFailures": []}
    capsys.readouterr()  # the function's EMF lines, printed in this process: not the CLI's output


@pytest.fixture
def aws(wiring: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", wiring["endpoint"])  # Powertools' idempotency client
    # Versioned, as the stack's bucket and maas dev's are: a manifest names the upload it ran.
    wiring["s3"].put_bucket_versioning(Bucket=wiring["bucket"], VersioningConfiguration={"Status": "Enabled"})
    return wiring


def rows_file(directory: Path, count: int, name: str = "rows.jsonl") -> Path:
    path = directory / name
    path.write_text("".join(json.dumps([float(n % 17)] * 64) + "\n" for n in range(count)))
    return path


def submit(
    capsys: pytest.CaptureFixture[str], aws: dict[str, Any], path: Path, model: str = "digits"
) -> None:
    assert batch(capsys, aws, "submit", str(path), "--model", model, "--no-wait")[0] == 0


def test_status_is_pending_then_done_with_the_counts_and_pending_again_after_a_new_upload(
    capsys: pytest.CaptureFixture[str], aws: dict[str, Any], tmp_path: Path
) -> None:
    path = rows_file(tmp_path, 3)
    submit(capsys, aws, path)

    code, out, _ = batch(capsys, aws, "status", str(path), "--model", "digits", "--json")
    assert (code, json.loads(out)["state"]) == (0, "pending")

    run_batch_side(capsys, aws, "inputs/digits/rows.jsonl")
    code, out, _ = batch(capsys, aws, "status", "inputs/digits/rows.jsonl")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["INPUT", "STATE", "VERSION", "ROWS", "FAILED", "SUBMITTED", "NOTE"]
    assert row.split()[:5] == ["inputs/digits/rows.jsonl", "done", "1", "3", "0"]

    submit(capsys, aws, rows_file(tmp_path, 5))  # the same key again: its result is not the old one's
    code, out, _ = batch(capsys, aws, "status", str(path), "--model", "digits", "--json")
    assert (json.loads(out)["state"], json.loads(out)["manifest"]) == ("pending", None)
    run_batch_side(capsys, aws, "inputs/digits/rows.jsonl")
    code, out, _ = batch(capsys, aws, "status", str(path), "--model", "digits", "--json")
    assert json.loads(out)["manifest"]["rows_in"] == 5


def test_a_file_that_could_not_run_is_failed_with_its_reason(
    capsys: pytest.CaptureFixture[str], aws: dict[str, Any], tmp_path: Path
) -> None:
    submit(capsys, aws, rows_file(tmp_path, 2), model="nope")
    run_batch_side(capsys, aws, "inputs/nope/rows.jsonl")

    code, out, _ = batch(capsys, aws, "status", f"s3://{aws['bucket']}/inputs/nope/rows.jsonl")
    assert code == 0
    assert out.splitlines()[1].split()[:2] == ["inputs/nope/rows.jsonl", "failed"]
    assert out.splitlines()[-1] == "reason: model 'nope' not found"


def test_list_shows_every_submitted_file_with_its_state(
    capsys: pytest.CaptureFixture[str], aws: dict[str, Any], tmp_path: Path
) -> None:
    submit(capsys, aws, rows_file(tmp_path, 2, "done.jsonl"))
    run_batch_side(capsys, aws, "inputs/digits/done.jsonl")
    submit(capsys, aws, rows_file(tmp_path, 2, "waiting.jsonl"))
    submit(capsys, aws, rows_file(tmp_path, 2, "other.jsonl"), model="nope")
    run_batch_side(capsys, aws, "inputs/nope/other.jsonl")

    code, out, _ = batch(capsys, aws, "list", "--json")
    assert code == 0
    assert {item["input"]: item["state"] for item in json.loads(out)} == {
        "inputs/digits/done.jsonl": "done",
        "inputs/digits/waiting.jsonl": "pending",
        "inputs/nope/other.jsonl": "failed",
    }
    code, out, _ = batch(capsys, aws, "list", "--model", "digits")
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [
        ["inputs/digits/done.jsonl", "done"],
        ["inputs/digits/waiting.jsonl", "pending"],
    ]


def test_get_downloads_the_outputs_errors_and_manifest_as_s3_holds_them(
    capsys: pytest.CaptureFixture[str], aws: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps([1.0] * 64) + "\n" + json.dumps([1.0] * 3) + "\n")  # the second is bad
    submit(capsys, aws, path)
    run_batch_side(capsys, aws, "inputs/digits/rows.jsonl")

    target = tmp_path / "results"
    code, out, _ = batch(capsys, aws, "get", "rows.jsonl", "--model", "digits", "-o", str(target))

    assert code == 0
    s3, bucket = aws["s3"], aws["bucket"]
    for key in ("outputs/digits/rows.jsonl", "errors/digits/rows.jsonl.errors.jsonl"):
        assert (target / key).read_bytes() == s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    manifest = json.loads((target / "outputs/digits/rows.jsonl.manifest.json").read_text())
    assert (manifest["status"], manifest["rows_out"], manifest["rows_failed"]) == ("succeeded", 1, 1)
    assert str(target / "outputs/digits/rows.jsonl") in out


def test_get_of_a_pending_or_failed_file_says_why_there_are_no_outputs(
    capsys: pytest.CaptureFixture[str], aws: dict[str, Any], tmp_path: Path
) -> None:
    submit(capsys, aws, rows_file(tmp_path, 2))
    code, _, err = batch(capsys, aws, "get", "inputs/digits/rows.jsonl", "-o", str(tmp_path / "out"))
    assert code == 2
    assert "inputs/digits/rows.jsonl has no result yet: it is pending" in err

    submit(capsys, aws, rows_file(tmp_path, 2), model="nope")
    run_batch_side(capsys, aws, "inputs/nope/rows.jsonl")
    code, _, err = batch(capsys, aws, "get", "inputs/nope/rows.jsonl", "-o", str(tmp_path / "out"))
    assert code == 2
    assert "was not processed: model 'nope' not found" in err
    manifest = json.loads((tmp_path / "out/outputs/nope/rows.jsonl.manifest.json").read_text())
    assert manifest["status"] == "failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "inputs/digits/never.jsonl"], "nothing was submitted at s3://"),
        (["status", "rows.jsonl"], "'rows.jsonl' is no key under inputs/: give the key"),
        (["status", "inputs/../x.jsonl"], "is not a batch input key"),
        (["get", "rows.jsonl", "--model", "../x"], "model name '../x' is not valid"),
    ],
)
def test_a_file_that_was_never_submitted_is_named(
    capsys: pytest.CaptureFixture[str], aws: dict[str, Any], args: list[str], message: str
) -> None:
    code, out, err = batch(capsys, aws, *args)
    assert (code, out) == (2, "")
    assert message in err


def test_get_writes_nothing_outside_its_directory_whatever_a_manifest_names(
    capsys: pytest.CaptureFixture[str], aws: dict[str, Any], tmp_path: Path
) -> None:
    # Anyone who may write to the bucket may write a manifest: its keys are not trusted as paths.
    s3, bucket = aws["s3"], aws["bucket"]
    s3.put_object(Bucket=bucket, Key="inputs/digits/rows.jsonl", Body=b"[1]\n")
    s3.put_object(Bucket=bucket, Key="escape", Body=b"not yours")
    manifest = {"status": "succeeded", "output": "outputs/../../escape", "errors": None, "rows_in": 1}
    s3.put_object(
        Bucket=bucket, Key="outputs/digits/rows.jsonl.manifest.json", Body=json.dumps(manifest).encode()
    )

    code, _, err = batch(capsys, aws, "get", "inputs/digits/rows.jsonl", "-o", str(tmp_path / "out"))

    assert code == 2
    assert "the manifest names 'outputs/../../escape', which is no file under" in err
    assert not (tmp_path / "escape").exists()
