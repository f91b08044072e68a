"""A real Prometheus (Debian's package) scrapes `maas exporter serve`, and PromQL finds the series;
on `maas dev` the functions' metrics reach its embedded CloudWatch, so the exporter and the
API's own `/metrics` show them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import DevServer, free_port

pytestmark = pytest.mark.e2e


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def test_prometheus_scrapes_the_exporter_and_answers_promql(aws_endpoint: str, tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is not installed: `make test` installs Debian's package"
    cloudwatch = boto3.client("cloudwatch", endpoint_url=aws_endpoint, region_name="us-east-1")
    cloudwatch.put_metric_data(
        Namespace="MaaS/Prom",
        MetricData=[
            {
                "MetricName": "Requests",
                "Dimensions": [{"Name": "model", "Value": "scraped"}],
                "Value": 1.0,
                "Timestamp": datetime.now(UTC),
            }
            for _ in range(3)
        ],
    )
    exporter_port, prometheus_port = free_port(), free_port()
    exporter = subprocess.Popen(
        [sys.executable, "-m", "maas.cli", "exporter", "serve", "--port", str(exporter_port), "--namespace", "MaaS/Prom",
         "--endpoint-url", aws_endpoint, "--delay", "-60", "--interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ,
    )  # fmt: skip
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs: [{{job_name: maas, static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]}}]\n"
    )
    server = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{prometheus_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{exporter_port}/metrics")
        wait_for(f"http://127.0.0.1:{prometheus_port}/-/ready")
        query = urllib.parse.urlencode({"query": 'maas_prom_requests_sum{model="scraped"}'})
        deadline = time.monotonic() + 60
        result: list = []
        while time.monotonic() < deadline and not result:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{prometheus_port}/api/v1/query?{query}", timeout=5
            ) as answer:
                result = json.loads(answer.read())["data"]["result"]
            time.sleep(0.5)
        assert result, "Prometheus never returned the series"
        assert result[0]["metric"]["job"] == "maas"
        assert float(result[0]["value"][1]) == 3.0
    finally:
        for process in (server, exporter):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


DIGITS_ROW = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}
).encode()


def infer_digits(server: DevServer, times: int) -> None:
    for _ in range(times):
        request = urllib.request.Request(
            f"{server.url}/v2/models/digits/infer",
            data=DIGITS_ROW,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200


def digits_requests(metrics_url: str, timeout: float = 90) -> tuple[float, str]:
    """Polls `metrics_url` until it shows digits' inference requests; (their count, the content type)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        with urllib.request.urlopen(metrics_url, timeout=30) as answer:
            content_type, text = answer.headers["content-type"], answer.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "maas_requests_sum" and sample.labels == {
                    "model": "digits",
                    "service": "predict",
                }:
                    return sample.value, content_type
        time.sleep(1)
    raise AssertionError(f"{metrics_url} never showed digits' requests:\n{text[:3000]}")


def test_the_exporter_against_maas_dev_shows_the_requests_made_to_it(dev_server: DevServer) -> None:
    infer_digits(dev_server, 3)
    port = free_port()
    # As `maas dev` prints it: its CloudWatch has no lag to wait for.
    exporter = subprocess.Popen(
        [sys.executable, "-m", "maas.cli", "exporter", "serve", "--port", str(port),
         "--endpoint-url", dev_server.aws_endpoint, "--delay", "0", "--interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/metrics")
        count, _ = digits_requests(f"http://127.0.0.1:{port}/metrics")
        assert count >= 3
    finally:
        exporter.send_signal(signal.SIGTERM)
        exporter.wait(timeout=30)


def test_metrics_answers_on_maas_dev_as_on_the_deployed_api(dev_server: DevServer) -> None:
    infer_digits(dev_server, 2)
    count, content_type = digits_requests(f"{dev_server.url}/metrics")
    assert count >= 2
    assert content_type.startswith("text/plain")  # Prometheus text, as the deployed route answers
