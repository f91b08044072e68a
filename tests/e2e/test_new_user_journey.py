"""A new user's first hour, in one story: `maas dev`; their own scikit-learn model converted
with skl2onnx (examples/digits/train.py); register and promote it; infer with curl and with
tritonclient; batch a CSV of digits; release it through the running API."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maas.local.demo import digits_split
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import running_dev_server

pytestmark = pytest.mark.e2e
MAAS = [sys.executable, "-m", "maas.cli"]


def run(*command: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, (
        f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def test_a_new_user_brings_a_model_serves_it_batches_a_csv_and_releases_it(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    with running_dev_server(tmp_path / "models") as server:
        env = {**os.environ, "AWS_ENDPOINT_URL": server.aws_endpoint}
        trained = run(
            sys.executable, str(REPO_ROOT / "examples" / "digits" / "train.py"), "my-digits.onnx",
            "--eval", "eval.npz", env=env, cwd=work,
        )  # fmt: skip
        assert "accuracy 0.9" in trained

        registered = json.loads(
            run(*MAAS, "models", "register", "digits", "my-digits.onnx", "--json", env=env, cwd=work)
        )
        assert registered["version"] == 2
        run(*MAAS, "models", "promote", "digits", "2", env=env, cwd=work)

        # curl, as the README shows it: version 2 (the user's model) answers under prod.
        _, test_x, _, test_y = digits_split()
        body = json.dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [3, 64],
                        "datatype": "FP32",
                        "data": test_x[:3].ravel().tolist(),
                    }
                ]
            }
        )
        answer = json.loads(
            run(
                "curl",
                "-sf",
                "-H",
                "content-type: application/json",
                f"{server.url}/v2/models/digits/infer",
                "-d",
                body,
                env=env,
                cwd=work,
            )
        )
        assert answer["model_version"] == "2"
        labels = next(o for o in answer["outputs"] if o["name"] == "label")["data"]
        assert len(labels) == 3 and all(0 <= label <= 9 for label in labels)

        import tritonclient.http as triton

        client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        try:
            batch = triton.InferInput("input", list(test_x.shape), "FP32")
            batch.set_data_from_numpy(test_x)
            predicted = client.infer("digits", [batch]).as_numpy("label")
        finally:
            client.close()
        assert (predicted == test_y).mean() > 0.93

        with (work / "digits.csv").open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow([f"input_{i}" for i in range(64)])
            writer.writerows(test_x[:25].tolist())
        manifest = json.loads(
            run(*MAAS, "batch", "submit", "digits.csv", "--model", "digits", "--json", env=env, cwd=work)
        )
        assert (manifest["status"], manifest["rows_in"], manifest["rows_failed"], manifest["version"]) == (
            "succeeded",
            25,
            0,
            "2",
        ), manifest
        run(*MAAS, "batch", "get", "inputs/digits/digits.csv", env=env, cwd=work)
        with (work / "outputs" / "digits" / "digits.csv").open() as stream:
            rows = list(csv.DictReader(stream))
        # Batch answers what the online API answered for the same rows.
        assert [int(row["label"]) for row in rows] == predicted[:25].tolist()

        # Loopback latency on a shared machine is noise next to the model: the gate's ratio is widened.
        (work / "maas.yaml").write_text(
            "stack_name: my-maas\nrelease: {max_latency_ratio: 5.0}\nmodels: [{name: digits, runtime: onnx}]\n"
        )
        run(
            *MAAS, "release", "digits", "--artifact", "my-digits.onnx", "--eval", "eval.npz", "--api-url", server.url,
            env=env, cwd=work,
        )  # fmt: skip
        shown = json.loads(run(*MAAS, "models", "show", "digits", "--json", env=env, cwd=work))
        prod = next(alias for alias in shown["aliases"] if alias["alias"] == "prod")
        assert prod["weights"] == {"3": 100}  # the release put version 3 in production
