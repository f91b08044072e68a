"""A Prometheus collector over CloudWatch: GetMetricData only, cached between scrapes.

Series are named by prometheus/cloudwatch_exporter's rules: the namespace lower-cased
(`AWS/Lambda` -> `aws_lambda`, `MaaS` -> `maas`), the metric snake-cased where a lower-case
letter or digit meets a capital (`4XXError` -> `4_xxerror`, `CPUUtilization` ->
`cpuutilization`), the statistic likewise (`_sum`, `_sample_count`, `_p99`), anything else
outside `[a-zA-Z0-9:_]` an underscore. For AWS namespaces these are YACE's names too
(`aws_apigateway_4_xxerror_sum`); YACE would also prefix `MaaS` with `aws_`. One change: a
leading `/` is dropped (`/aws/sagemaker/Endpoints` -> `aws_sagemaker_endpoints`), as YACE
does. Each CloudWatch dimension is a label, named the same way (`FunctionName` ->
`function_name`), and each dimension set of a metric is its own series.

CloudWatch is read at most once per `interval` however often Prometheus scrapes; a
throttled read keeps the last values and waits `interval`, then twice as long after each
further throttle, up to `max_backoff`. A statistic CloudWatch refuses (moto computes no
percentiles; an account may refuse one) is left out and counted, and the rest is served.
The exporter counts its own calls and the metrics it requested, so the CloudWatch bill
can be predicted.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MAX_QUERIES_PER_CALL = 500  # GetMetricData's limit
THROTTLING = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
# StatusCodes of a GetMetricDataResult that come without values (PartialData pages on).
REFUSED = {"Forbidden", "InternalError"}
STAT_SUFFIXES = {
    "Sum": "sum",
    "SampleCount": "sample_count",
    "Minimum": "minimum",
    "Maximum": "maximum",
    "Average": "average",
}


@dataclass(frozen=True)
class Series:
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str

    @property
    def prometheus_name(self) -> str:
        namespace = self.namespace.removeprefix("/").lower()
        stat = STAT_SUFFIXES.get(self.stat) or snake(self.stat)
        return safe_name(f"{namespace}_{snake(self.metric)}_{stat}")

    @property
    def labels(self) -> dict[str, str]:
        return {safe_name(snake(name)).replace(":", "_"): value for name, value in self.dimensions}


def snake(name: str) -> str:
    """cloudwatch_exporter's toSnakeCase: `InferenceLatency` -> `inference_latency`, `4XXError`
    -> `4_xxerror`, `CPUUtilization` -> `cpuutilization`."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def safe_name(name: str) -> str:
    """cloudwatch_exporter's safeName: characters Prometheus refuses become `_`, runs of `_` one."""
    return re.sub(r"__+", "_", re.sub(r"[^a-zA-Z0-9:_]", "_", name))


class CloudWatchCollector(Collector):
    """Exposes the latest value of every metric of `namespaces` (found with ListMetrics),
    for each statistic in `stats` (Sum, Average, Maximum, Minimum, SampleCount, pNN)."""

    def __init__(
        self,
        client: Any,
        *,
        namespaces: tuple[str, ...] = ("MaaS",),
        stats: tuple[str, ...] = ("Sum", "Average", "Maximum"),
        period: int = 60,
        delay: int = 60,
        interval: float = 60.0,
        max_backoff: float = 600.0,
        dimension_filters: dict[str, dict[str, list[str]]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.namespaces = namespaces
        # e.g. {"AWS/Lambda": {"FunctionName": ["maas-digits", ...]}}: only the deployment's resources.
        self.dimension_filters = dimension_filters or {}
        self.stats = stats
        self.period = period
        self.delay = delay
        self.interval = interval
        self.max_backoff = max_backoff
        self.clock = clock
        self._values: dict[Series, float] = {}
        self._read_at: float | None = None
        self._throttled_in_a_row = 0
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {"GetMetricData": 0, "ListMetrics": 0}
        self.metrics_requested = 0
        self.throttled = 0
        self.query_errors: Counter[tuple[str, str, str]] = Counter()  # (namespace, metric, stat)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            self._refresh_if_due()
            values = dict(self._values)
            query_errors = dict(self.query_errors)
        families: dict[str, Metric] = {}
        for series, value in sorted(values.items(), key=lambda item: item[0].prometheus_name):
            name = series.prometheus_name
            family = families.get(name)
            if family is None:
                family = families[name] = GaugeMetricFamily(
                    name, f"CloudWatch {series.namespace} {series.metric} ({series.stat})"
                )
            # Labels per sample, not per family: a metric published under two dimension sets
            # (per model, per version) is two series with different label names.
            family.add_sample(name, series.labels, value)
        yield from families.values()
        calls = CounterMetricFamily(
            "maas_exporter_cloudwatch_requests", "CloudWatch API calls made by the exporter", labels=["api"]
        )
        for api, count in self.calls.items():
            calls.add_metric([api], count)
        yield calls
        yield CounterMetricFamily(
            "maas_exporter_metrics_requested",
            "Metrics requested from GetMetricData (billed per metric)",
            value=self.metrics_requested,
        )
        yield CounterMetricFamily(
            "maas_exporter_throttled", "CloudWatch reads refused by throttling", value=self.throttled
        )
        errors = CounterMetricFamily(
            "maas_exporter_query_errors",
            "GetMetricData queries CloudWatch did not answer (left out of the scrape)",
            labels=["namespace", "metric", "stat"],
        )
        for key, count in sorted(query_errors.items()):
            errors.add_metric(list(key), count)
        yield errors

    def _refresh_if_due(self) -> None:
        now = self.clock()
        if self._read_at is not None and now - self._read_at < self._wait():
            return
        try:
            self._values = self._read()
            self._throttled_in_a_row = 0
        except ClientError as error:
            if error.response["Error"]["Code"] not in THROTTLING:
                raise
            self.throttled += 1
            self._throttled_in_a_row += 1
            logger.warning(
                "CloudWatch throttled the exporter; serving cached values, next read in %.0f s", self._wait()
            )
        self._read_at = now

    def _wait(self) -> float:
        """Seconds from one read to the next: `interval`, and after n throttles in a row
        interval * 2^(n-1), at most `max_backoff`."""
        if not self._throttled_in_a_row:
            return self.interval
        doubled = self.interval * 2.0 ** (self._throttled_in_a_row - 1)
        return max(self.interval, min(self.max_backoff, doubled))

    def discover(self) -> list[Series]:
        """Every (metric, dimensions) of the namespaces, once per statistic."""
        series: dict[Series, None] = {}  # ordered and without repeats: ListMetrics may list one twice
        for namespace, listing in self._listings():
            paginator = self.client.get_paginator("list_metrics")
            for page in paginator.paginate(**listing):
                self.calls["ListMetrics"] += 1
                for metric in page.get("Metrics", []):
                    dimensions = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
                    for stat in self.stats:
                        series[Series(namespace, metric["MetricName"], dimensions, stat)] = None
        return list(series)

    def _listings(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for namespace in self.namespaces:
            filters = self.dimension_filters.get(namespace)
            if not filters:
                yield namespace, {"Namespace": namespace}
                continue
            for name, values in filters.items():
                for value in values:
                    yield namespace, {"Namespace": namespace, "Dimensions": [{"Name": name, "Value": value}]}

    def _read(self) -> dict[Series, float]:
        wanted = self.discover()
        end = datetime.now(UTC) - timedelta(seconds=self.delay)
        start = end - timedelta(seconds=self.period * 5)
        values: dict[Series, float] = {}
        for offset in range(0, len(wanted), MAX_QUERIES_PER_CALL):
            values.update(self._fetch(wanted[offset : offset + MAX_QUERIES_PER_CALL], start, end))
        return values

    def _fetch(self, chunk: list[Series], start: datetime, end: datetime) -> dict[Series, float]:
        """The latest value of each series of `chunk`. A call CloudWatch refuses is retried one
        statistic at a time, so that one it cannot answer costs only its own series; those are
        counted in `query_errors`. Throttling propagates: the whole read waits."""
        try:
            return self._get_metric_data(chunk, start, end)
        except ClientError as error:
            if error.response["Error"]["Code"] in THROTTLING:
                raise
            stats = sorted({series.stat for series in chunk})
            if len(stats) > 1:
                values: dict[Series, float] = {}
                for stat in stats:
                    values.update(self._fetch([s for s in chunk if s.stat == stat], start, end))
                return values
            logger.warning(
                "CloudWatch did not answer %d %s queries (%s); serving the others",
                len(chunk),
                stats[0],
                error.response["Error"].get("Code"),
            )
            self.query_errors.update((s.namespace, s.metric, s.stat) for s in chunk)
            return {}

    def _get_metric_data(self, chunk: list[Series], start: datetime, end: datetime) -> dict[Series, float]:
        queries = [
            {
                "Id": f"q{index}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": series.namespace,
                        "MetricName": series.metric,
                        "Dimensions": [{"Name": name, "Value": value} for name, value in series.dimensions],
                    },
                    "Period": self.period,
                    "Stat": series.stat,
                },
                "ReturnData": True,
            }
            for index, series in enumerate(chunk)
        ]
        self.metrics_requested += len(queries)
        values: dict[Series, float] = {}
        refused: set[Series] = set()
        token = None
        while True:
            arguments: dict[str, Any] = {
                "MetricDataQueries": queries,
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampDescending",
            }
            if token:
                arguments["NextToken"] = token
            answer = self.client.get_metric_data(**arguments)
            self.calls["GetMetricData"] += 1
            for result in answer.get("MetricDataResults", []):
                series = chunk[int(result["Id"][1:])]
                if result.get("StatusCode") in REFUSED:
                    refused.add(series)
                elif result.get("Values"):
                    values.setdefault(series, float(result["Values"][0]))
            token = answer.get("NextToken")
            if not token:
                break
        self.query_errors.update((s.namespace, s.metric, s.stat) for s in refused - values.keys())
        return values
