"""A real Prometheus (Debian's package) scrapes `maas exporter serve`, and PromQL finds the series."""

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

from tests.e2e.conftest import free_port

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
