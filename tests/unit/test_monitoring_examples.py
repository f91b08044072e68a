"""The Grafana dashboard and prometheus.yml examples refer to series the exporter produces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from maas.metrics.exporter import Series

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "monitoring"
EMITTED = [
    "Requests",
    "Errors4xx",
    "Errors5xx",
    "InferenceLatency",
    "EndToEndLatency",
    "Served",
    "ModelLoadTime",
    "ColdStart",
    "BatchRows",
    "BatchRowsFailed",
]
STATS = ["Sum", "Average", "Maximum", "p99"]


def test_every_dashboard_query_names_an_exported_series() -> None:
    dashboard = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    exported = {Series("MaaS", metric, (), stat).prometheus_name for metric in EMITTED for stat in STATS}
    exported |= {
        Series("AWS/Lambda", m, (), s).prometheus_name for m in ("Duration", "Throttles") for s in STATS
    }
    exported |= {Series("AWS/SageMaker", "GPUUtilization", (), "Average").prometheus_name}
    names = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:maas|aws)_[a-z0-9_]+)\b", target["expr"])
    }
    assert names, "the dashboard has no queries"
    assert names <= exported, sorted(names - exported)


def test_the_prometheus_example_is_valid_yaml_scraping_the_exporter_port() -> None:
    config = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text())
    targets = config["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["127.0.0.1:9106"]
