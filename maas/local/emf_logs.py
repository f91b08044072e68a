"""EMF records printed by the handlers `maas dev` runs in its own process become CloudWatch
metrics in the embedded AWS, as CloudWatch Logs makes them from a Lambda function's output.

(The functions `maas dev --deploy` runs in worker processes get the same from their log,
record by record, in `maas.local.lambda_containers.put_emf_metrics`.) Here every request of every
function prints a record, so the figures are summed per series for a second and sent as
one PutMetricData datum of statistic values each: what the exporter reads (Sum, Average,
Minimum, Maximum, SampleCount) is unchanged, and moto keeps one datum per series per
second instead of one per request, which a load test would otherwise grow without bound.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

logger = logging.getLogger(__name__)

MAX_DATA_PER_CALL = 1000  # PutMetricData's limit
# (namespace, metric, dimensions, unit)
SeriesKey = tuple[str, str, tuple[tuple[str, str], ...], str | None]


class EmfToCloudWatch(io.TextIOBase):
    """Stands in for `sys.stdout` between `start` and `stop`: a line that is an EMF record is
    added to the figures sent to CloudWatch every `interval` seconds; any other line goes on
    to the real stdout (EMF lines too with `echo`, for `maas dev --verbose`)."""

    def __init__(self, client: Any, *, interval: float = 1.0, echo: bool = False) -> None:
        super().__init__()
        self.client = client
        self.interval = interval
        self.echo = echo
        self.stream: TextIO = sys.stdout
        self._lines = threading.local()  # each thread's unfinished line
        self._lock = threading.Lock()
        self._pending: dict[SeriesKey, list[float]] = {}  # [count, sum, min, max]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send_every_interval, name="maas-emf", daemon=True)

    def start(self) -> None:
        self.stream = sys.stdout
        sys.stdout = self
        self._thread.start()

    def stop(self) -> None:
        """Restore stdout and send what is pending."""
        sys.stdout = self.stream
        self._stop.set()
        self._thread.join(timeout=10)
        self.send()

    def write(self, text: str) -> int:
        lines = (getattr(self._lines, "text", "") + text).split("\n")
        self._lines.text = lines.pop()
        for line in lines:
            if not (line.startswith('{"_aws"') and self.add(line)) or self.echo:
                self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        unfinished = getattr(self._lines, "text", "")
        if unfinished and not unfinished.startswith("{"):  # a prompt, not half a record
            self.stream.write(unfinished)
            self._lines.text = ""
        self.stream.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.stream.encoding

    def add(self, line: str) -> bool:
        """Add the figures of one EMF record; False if `line` is not one."""
        try:
            record = json.loads(line)
            figures = list(_figures(record))
        except (ValueError, KeyError, TypeError):
            return False
        with self._lock:
            for key, values in figures:
                for value in values:
                    total = self._pending.get(key)
                    if total is None:
                        self._pending[key] = [1, value, value, value]
                    else:
                        total[0] += 1
                        total[1] += value
                        total[2] = min(total[2], value)
                        total[3] = max(total[3], value)
        return True

    def send(self) -> None:
        """PutMetricData for the figures added since the last call."""
        with self._lock:
            pending, self._pending = self._pending, {}
        now = datetime.now(UTC)
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for (namespace, metric, dimensions, unit), (count, total, low, high) in pending.items():
            datum: dict[str, Any] = {
                "MetricName": metric,
                "Dimensions": [{"Name": name, "Value": value} for name, value in dimensions],
                "Timestamp": now,
                "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
            }
            if unit:
                datum["Unit"] = unit
            by_namespace.setdefault(namespace, []).append(datum)
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), MAX_DATA_PER_CALL):
                self.client.put_metric_data(
                    Namespace=namespace, MetricData=data[start : start + MAX_DATA_PER_CALL]
                )

    def _send_every_interval(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.send()
            except Exception:  # the embedded AWS stopping under us, say: metrics must not kill maas dev
                logger.warning(
                    "could not send the functions' metrics to the embedded CloudWatch", exc_info=True
                )


def _figures(record: dict[str, Any]) -> list[tuple[SeriesKey, list[float]]]:
    """Each metric of an EMF record once per dimension set of its directive, with its values."""
    found = []
    for directive in record["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            dimensions = tuple(sorted((name, str(record[name])) for name in dimension_set))
            for metric in directive["Metrics"]:
                value = record[metric["Name"]]
                values = [float(v) for v in value] if isinstance(value, list) else [float(value)]
                key = (directive["Namespace"], metric["Name"], dimensions, metric.get("Unit"))
                found.append((key, values))
    return found
