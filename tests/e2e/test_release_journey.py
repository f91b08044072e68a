"""From a Git commit to production on `maas dev`: `maas release` scores each candidate through
the running API against what prod serves, and promotes, stops at staging, or rolls back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from maas.local.demo import INPUT_NAME, build_digits_onnx, digits_split
from tests.e2e.conftest import DevServer, free_port, running_dev_server
from tests.functional.conftest import aws_client

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]


def weak_digits_onnx(path: Path, rows: int | None = None) -> None:
    """A model built to be less accurate: 4 hidden units, 120 training rows, 5 epochs; with
    `rows`, it takes exactly that many rows per request ([rows, 64], a fixed first dimension)."""
    import warnings

    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.neural_network import MLPClassifier

    warnings.filterwarnings("ignore")
    train_x, _, train_y, _ = digits_split()
    weak = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(
        train_x[:120], train_y[:120]
    )
    onnx_model = to_onnx(
        weak, initial_types=[(INPUT_NAME, FloatTensorType([rows, 64]))], options={"zipmap": False}
    )
    path.write_bytes(onnx_model.SerializeToString())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("release")
    _, test_x, _, test_y = digits_split()
    np.savez(folder / "eval.npz", **{INPUT_NAME: test_x, "labels": test_y})
    build_digits_onnx(folder / "better.onnx", quantize=False)
    weak_digits_onnx(folder / "worse.onnx")
    weak_digits_onnx(folder / "fixed8.onnx", rows=8)
    np.savez(folder / "eval-63-columns.npz", **{INPUT_NAME: test_x[:, :63], "labels": test_y})
    config = folder / "maas.yaml"
    # Loopback latency is noise next to the model; the latency gate has its unit tests.
    config.write_text(
        "stack_name: maas-e2e\n"
        "release: {max_quality_drop: 1.0, max_latency_ratio: 5.0, wait_seconds: 60,"
        " canary: {weight: 20, minutes: 0.05, poll_seconds: 0.5}, alarm_prefix: maas-e2e-canary}\n"
        "models: [{name: digits, runtime: onnx}]\n"
    )
    unwatched = folder / "unwatched.yaml"
    unwatched.write_text(config.read_text().replace("maas-e2e-canary", "maas-e2e-no-such-alarm"))
    return {
        "eval": folder / "eval.npz",
        "eval-63-columns": folder / "eval-63-columns.npz",
        "better": folder / "better.onnx",
        "worse": folder / "worse.onnx",
        "fixed8": folder / "fixed8.onnx",
        "config": config,
        "unwatched": unwatched,
    }


def release(
    server: DevServer,
    files: dict[str, Path],
    artifact: str,
    *extra: str,
    model: str = "digits",
    evaluation: str = "eval",
    config: str = "config",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maas.cli", "release", model, "--artifact", str(files[artifact]),
         "--eval", str(files[evaluation]), "--api-url", server.url, "--config", str(files[config]), *extra],
        cwd=REPO_ROOT,
        env={**os.environ, "AWS_ENDPOINT_URL": server.aws_endpoint, **(env or {})},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def show(server: DevServer, *args: str, model: str = "digits") -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "maas.cli", "models", "--json", "show", model, *args],
        env={**os.environ, "AWS_ENDPOINT_URL": server.aws_endpoint},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def registry_state(server: DevServer) -> tuple[list[int], list[tuple[str, dict[str, int]]]]:
    """Every version number and every alias with its weights: what a refused release must not change."""
    shown = show(server)
    return (
        sorted(v["version"] for v in shown["versions"]),
        sorted((a["alias"], a["weights"]) for a in shown["aliases"]),
    )


@pytest.fixture(scope="module")
def iam_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """`maas dev --auth iam`: every route wants SigV4 by the local stack's keys (testing/testing)."""
    with running_dev_server(tmp_path_factory.mktemp("release-iam-models"), "--auth", "iam") as server:
        yield server


def prod(server: DevServer) -> dict[str, int]:
    alias = next(a for a in show(server)["aliases"] if a["alias"] == "prod")
    return alias["weights"]


def served_by_prod(server: DevServer, limit: float = 30.0) -> str:
    """The version `/v2/models/digits` answers with, once the function's alias cache has expired."""
    _, test_x, _, _ = digits_split()
    body = json.dumps(
        {"inputs": [{"name": INPUT_NAME, "shape": [1, 64], "datatype": "FP32", "data": test_x[0].tolist()}]}
    )
    deadline = time.monotonic() + limit
    while True:
        request = urllib.request.Request(
            f"{server.url}/v2/models/digits/infer",
            data=body.encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            version = str(json.loads(response.read())["model_version"])
        if version == max(prod(server), key=int) or time.monotonic() > deadline:
            return version
        time.sleep(0.5)


def test_a_dry_run_prints_the_plan_and_changes_nothing(dev_server: DevServer, files: dict[str, Path]) -> None:
    before = show(dev_server)
    done = release(dev_server, files, "better", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "dry run, nothing changed" in done.stderr
    assert "register" in done.stderr and "canary 20%" in done.stderr
    assert show(dev_server) == before


def test_a_better_model_is_released_and_prod_serves_it_with_its_commit(
    dev_server: DevServer, files: dict[str, Path]
) -> None:
    (old,) = prod(dev_server)
    done = release(dev_server, files, "better", "--no-canary")
    assert done.returncode == 0, done.stderr
    new = max(v["version"] for v in show(dev_server)["versions"])
    assert f"released: prod serves digits version {new}" in done.stderr
    assert "scored staging" in done.stderr and "scored prod" in done.stderr
    assert prod(dev_server) == {str(new): 100}
    assert str(new) != old
    assert served_by_prod(dev_server) == str(new)
    record = show(dev_server, str(new))
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    author = subprocess.run(
        ["git", "log", "-1", "--format=%an <%ae>"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert record["source_commit"] == commit.stdout.strip()
    assert record["labels"]["git.author"] == author.stdout.strip()


def test_a_worse_model_stops_at_staging_with_both_scores(
    dev_server: DevServer, files: dict[str, Path]
) -> None:
    before = prod(dev_server)
    done = release(dev_server, files, "worse")
    assert done.returncode == 3, done.stderr
    (serving,) = before
    assert "stopped at staging" in done.stderr
    assert f"vs prod version {serving}" in done.stderr and "accuracy" in done.stderr
    assert "quality dropped by" in done.stderr
    assert prod(dev_server) == before
    assert served_by_prod(dev_server) == serving
    staged = next(a for a in show(dev_server)["aliases"] if a["alias"] == "staging")
    assert list(staged["weights"]) == [str(max(v["version"] for v in show(dev_server)["versions"]))]


def test_a_release_against_an_api_that_wants_sigv4_signs_its_requests_and_is_released(
    iam_server: DevServer, files: dict[str, Path]
) -> None:
    done = release(iam_server, files, "better", "--no-canary")
    assert done.returncode == 0, done.stderr
    new = max(v["version"] for v in show(iam_server)["versions"])
    assert f"released: prod serves digits version {new}" in done.stderr
    assert prod(iam_server) == {str(new): 100}


@pytest.mark.parametrize(
    ("extra", "env", "status"),
    [
        (["--no-sign"], {}, "401"),
        ([], {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "403"),
    ],
    ids=["unsigned", "signed-with-the-wrong-secret"],
)
def test_a_release_the_api_refuses_registers_nothing(
    iam_server: DevServer, files: dict[str, Path], extra: list[str], env: dict[str, str], status: str
) -> None:
    before = registry_state(iam_server)
    done = release(iam_server, files, "better", "--no-canary", *extra, env=env)
    assert done.returncode == 2, done.stderr
    assert f"answered {status}" in done.stderr
    assert "nothing was registered" in done.stderr
    assert "registered digits version" not in done.stderr
    assert registry_state(iam_server) == before


def test_a_release_whose_api_does_not_answer_registers_nothing(
    dev_server: DevServer, files: dict[str, Path]
) -> None:
    before = registry_state(dev_server)
    nobody = DevServer(dev_server.process, dev_server.log, free_port(), 0)  # a port nothing listens on
    nobody.aws_endpoint = dev_server.aws_endpoint
    done = release(nobody, files, "better", "--no-canary")
    assert done.returncode == 2, done.stderr
    assert f"GET {nobody.url}/v2/health/ready failed" in done.stderr
    assert "nothing was registered" in done.stderr
    assert registry_state(dev_server) == before


def test_an_evaluation_file_that_does_not_fit_the_model_registers_nothing(
    dev_server: DevServer, files: dict[str, Path]
) -> None:
    before = registry_state(dev_server)
    done = release(dev_server, files, "better", "--no-canary", evaluation="eval-63-columns")
    assert done.returncode == 2, done.stderr
    assert "input 'input' has rows of shape [63] in the evaluation file" in done.stderr
    assert "the model takes [64]" in done.stderr
    assert "nothing was registered" in done.stderr
    assert registry_state(dev_server) == before


def test_a_model_with_a_fixed_first_dimension_is_scored_in_requests_of_exactly_that_many_rows(
    dev_server: DevServer, files: dict[str, Path]
) -> None:
    """[8, 64]: 450 evaluation rows go as 57 requests of 8 (the last padded, its padding not
    scored), and the quality is that of the 450 rows, as the model scores them here."""
    import onnxruntime

    _, test_x, _, test_y = digits_split()
    session = onnxruntime.InferenceSession(str(files["fixed8"]), providers=["CPUExecutionProvider"])
    padded = np.concatenate([test_x, np.repeat(test_x[-1:], (-len(test_x)) % 8, axis=0)])
    labels = np.concatenate(
        [session.run(["label"], {INPUT_NAME: padded[i : i + 8]})[0] for i in range(0, len(padded), 8)]
    )
    expected = (labels[: len(test_y)] == test_y).mean() * 100

    done = release(dev_server, files, "fixed8", "--no-canary", model="digits-fixed")
    assert done.returncode == 0, done.stderr
    assert "rows per request: 8 (the model's fixed first dimension)" in done.stderr
    assert f"quality {expected:.3f}, " in done.stderr
    assert "over 57 requests" in done.stderr
    assert prod_of(dev_server, "digits-fixed") == {"1": 100}


def prod_of(server: DevServer, model: str) -> dict[str, int]:
    alias = next(a for a in show(server, model=model)["aliases"] if a["alias"] == "prod")
    return alias["weights"]


def test_a_canary_with_no_alarm_to_watch_says_so_instead_of_calling_itself_quiet(
    dev_server: DevServer, files: dict[str, Path]
) -> None:
    done = release(dev_server, files, "better", config="unwatched")
    assert done.returncode == 0, done.stderr
    assert "no CloudWatch alarm matches 'maas-e2e-no-such-alarm*'" in done.stderr
    assert "the canary watched nothing" in done.stderr
    assert "canary quiet" not in done.stderr


def test_a_canary_whose_alarm_fires_is_rolled_back(dev_server: DevServer, files: dict[str, Path]) -> None:
    cloudwatch = aws_client("cloudwatch", dev_server.aws_endpoint)
    cloudwatch.put_metric_alarm(
        AlarmName="maas-e2e-canary-5xx",
        Namespace="AWS/ApiGateway",
        MetricName="5xx",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="maas-e2e-canary-5xx", StateValue="ALARM", StateReason="e2e")
    before = prod(dev_server)
    done = release(dev_server, files, "better")
    assert done.returncode == 4, done.stderr
    assert "rolled back: alarm(s) maas-e2e-canary-5xx fired during the canary" in done.stderr
    history = subprocess.run(
        [sys.executable, "-m", "maas.cli", "models", "--json", "history", "digits"],
        env={**os.environ, "AWS_ENDPOINT_URL": dev_server.aws_endpoint},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    actions = [change["action"] for change in json.loads(history.stdout)[:2]]
    assert actions == ["rollback", "canary"]
    assert prod(dev_server) == before
