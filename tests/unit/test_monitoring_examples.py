"""The prometheus.yml example scrapes the exporter. (What the Grafana dashboard's queries
answer, from what the functions really publish, is tests/functional/test_monitoring_dashboard.py.)"""

from __future__ import annotations

from pathlib import Path

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "monitoring"


def test_the_prometheus_example_is_valid_yaml_scraping_the_exporter_port() -> None:
    config = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text())
    targets = config["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["127.0.0.1:9106"]
