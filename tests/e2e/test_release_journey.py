"""From a Git commit to production on `maas dev`: `maas release` scores each candidate through
the running API against what prod serves, and promotes, stops at staging, or rolls back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from maas.local.demo import INPUT_NAME, build_digits_onnx, digits_split
from tests.e2e.conftest import DevServer
from tests.functional.conftest import aws_client

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]


def weak_digits_onnx(path: Path) -> None:
    """A model built to be less accurate: 4 hidden units, 120 training rows, 5 epochs."""
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
        weak, initial_types=[(INPUT_NAME, FloatTensorType([None, 64]))], options={"zipmap": False}
    )
    path.write_bytes(onnx_model.SerializeToString())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("release")
    _, test_x, _, test_y = digits_split()
    np.savez(folder / "eval.npz", **{INPUT_NAME: test_x, "labels": test_y})
    build_digits_onnx(folder / "better.onnx", quantize=False)
    weak_digits_onnx(folder / "worse.onnx")
    config = folder / "maas.yaml"
    # Loopback latency is noise next to the model; the latency gate has its unit tests.
    config.write_text(
        "stack_name: maas-e2e\n"
        "release: {max_quality_drop: 1.0, max_latency_ratio: 5.0, wait_seconds: 60,"
        " canary: {weight: 20, minutes: 0.05, poll_seconds: 0.5}, alarm_prefix: maas-e2e-canary}\n"
        "models: [{name: digits, runtime: onnx}]\n"
    )
    return {
        "eval": folder / "eval.npz",
        "better": folder / "better.onnx",
        "worse": folder / "worse.onnx",
        "config": config,
    }


def release(
    server: DevServer, files: dict[str, Path], artifact: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maas.cli", "release", "digits", "--artifact", str(files[artifact]),
         "--eval", str(files["eval"]), "--api-url", server.url, "--config", str(files["config"]), *extra],
        cwd=REPO_ROOT,
        env={**os.environ, "AWS_ENDPOINT_URL": server.aws_endpoint},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def show(server: DevServer, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "maas.cli", "models", "--json", "show", "digits", *args],
        env={**os.environ, "AWS_ENDPOINT_URL": server.aws_endpoint},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


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
