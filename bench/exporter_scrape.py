"""Scrape cost of the exporter for about 2,000 series, against bare GetMetricData in the same run.

2,001 series: 667 metrics (one per model label) x Sum, Average, Maximum, in moto's
CloudWatch on loopback. maas: a cold scrape (ListMetrics, GetMetricData in batches of
500, Prometheus text), then a warm scrape inside the interval (served from the cache).
Baseline: the same GetMetricData calls issued directly, nothing else. Prints times,
CloudWatch calls and the ratio.

    .venv/bin/python bench/exporter_scrape.py
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta

METRICS = 667
STATS = ("Sum", "Average", "Maximum")


def main() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    import boto3
    from prometheus_client import generate_latest
    from prometheus_client.core import CollectorRegistry

    from maas.local.aws import EmbeddedAws
    from maas.metrics.exporter import MAX_QUERIES_PER_CALL, CloudWatchCollector

    aws = EmbeddedAws()
    endpoint = aws.start()
    try:
        client = boto3.client("cloudwatch", endpoint_url=endpoint)
        now = datetime.now(UTC)
        data = [
            {
                "MetricName": "Requests",
                "Dimensions": [{"Name": "model", "Value": f"m{i}"}],
                "Value": 1.0,
                "Timestamp": now,
            }
            for i in range(METRICS)
        ]
        for start in range(0, len(data), 500):
            client.put_metric_data(Namespace="MaaS", MetricData=data[start : start + 500])

        collector = CloudWatchCollector(client, stats=STATS, delay=-60, interval=60)
        registry = CollectorRegistry()
        registry.register(collector)
        started = time.perf_counter()
        text = generate_latest(registry).decode()
        cold = time.perf_counter() - started
        calls_cold = dict(collector.calls)
        started = time.perf_counter()
        generate_latest(registry)
        warm = time.perf_counter() - started
        series = sum(1 for line in text.splitlines() if line.startswith("maas_requests_"))

        queries = [
            {
                "Id": f"q{i}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "MaaS",
                        "MetricName": "Requests",
                        "Dimensions": [{"Name": "model", "Value": f"m{i % METRICS}"}],
                    },
                    "Period": 60,
                    "Stat": STATS[i // METRICS],
                },
            }
            for i in range(METRICS * len(STATS))
        ]
        started = time.perf_counter()
        bare_calls = 0
        for offset in range(0, len(queries), MAX_QUERIES_PER_CALL):
            client.get_metric_data(
                MetricDataQueries=queries[offset : offset + MAX_QUERIES_PER_CALL],
                StartTime=now - timedelta(minutes=5),
                EndTime=now + timedelta(minutes=1),
            )
            bare_calls += 1
        bare = time.perf_counter() - started
    finally:
        aws.stop()
    print(f"python {sys.version.split()[0]}, {series} series exported")
    print(f"baseline: {bare_calls} GetMetricData calls, {bare * 1000:.0f} ms")
    print(f"cold scrape: {calls_cold} calls, {cold * 1000:.0f} ms, ratio to baseline {cold / bare:.2f}")
    print(
        f"warm scrape (cached, no CloudWatch call): {warm * 1000:.1f} ms, calls unchanged: {collector.calls == calls_cold}"
    )


if __name__ == "__main__":
    main()
