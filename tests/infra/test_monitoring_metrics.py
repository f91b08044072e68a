"""The stack's CloudWatch alarms and dashboard watch metrics the functions really publish.

CloudWatch names a metric by its namespace, name and exact set of dimensions: an alarm on
`InferenceLatency{model}` never fires when the function publishes
`InferenceLatency{model, service}`. So the dimension sets are taken from what the predict
function prints, not written down again here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from maas.local.context import LocalLambdaContext
from maas.local.events import http_api_event
from maas.local.gateway import load_handler_module
from tests.conftest import PREDICT_HANDLER

ROW = [0.0] * 64


@pytest.fixture
def published(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    """(metric, dimension names, the model's value) of every figure of one answered and one
    refused request to digits, with the deployed function's environment."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "maas-predict-digits")
    monkeypatch.setenv("MAAS_MODEL_DIR", str(model_dir))
    module = load_handler_module(PREDICT_HANDLER)
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]})
    capsys.readouterr()
    for payload in (body, "{}"):
        event = http_api_event(
            method="POST", target="/v2/models/digits/infer", headers={}, body=payload.encode()
        )
        module.handler(event, LocalLambdaContext())
    found = set()
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = frozenset((name, record[name]) for name in dimension_set)
                for metric in directive["Metrics"]:
                    found.add((directive["Namespace"], metric["Name"], dimensions))
    return found


def watched(template: Template) -> list[tuple[str, str, frozenset[tuple[str, str]]]]:
    """(namespace, metric, dimensions) of every MaaS metric an alarm or the dashboard watches."""
    found = []
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        metrics = [properties] + [
            q["MetricStat"]["Metric"] for q in properties.get("Metrics", []) if "MetricStat" in q
        ]
        for metric in metrics:
            if metric.get("Namespace") == "MaaS":
                dimensions = frozenset((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
                found.append(("MaaS", metric["MetricName"], dimensions))
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body: Any = dashboard["Properties"]["DashboardBody"]
    text = "".join(part if isinstance(part, str) else "TOKEN" for part in body["Fn::Join"][1])
    for widget in json.loads(text)["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            names = [part for part in line if isinstance(part, str)]
            if names and names[0] == "MaaS":
                found.append(("MaaS", names[1], frozenset(zip(names[2::2], names[3::2], strict=True))))
    return found


def test_every_alarm_and_graph_on_maas_metrics_watches_a_series_the_predict_function_publishes(
    template: Template, published: set[tuple[str, str, frozenset[tuple[str, str]]]]
) -> None:
    watching = [w for w in watched(template) if ("model", "digits") in w[2]]
    assert {metric for _, metric, _ in watching} >= {"InferenceLatency", "Requests", "Errors4xx", "Errors5xx"}
    unpublished = [w for w in watching if w not in published and w[1] != "Errors5xx"]
    assert not unpublished, f"watched but never published: {unpublished}; published: {sorted(published)}"
    # Errors5xx was not provoked above: it shares the dimension set of Errors4xx.
    errors4xx = {d for _, metric, d in published if metric == "Errors4xx"}
    assert all(d in errors4xx for _, metric, d in watching if metric == "Errors5xx")
