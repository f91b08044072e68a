"""EMF records of the predict function, written as JSON lines without a metrics framework.

The records are those Powertools Metrics wrote (the same `_aws` metadata, dimension sets,
metric names, units and `[value]` lists; see `maas.metrics.emf` for the table), built here
because the request path pays for nothing it does not use: Powertools' import costs tens of
milliseconds of cold start and its per-request bookkeeping more than the whole answer of a
small model. `POWERTOOLS_METRICS_DISABLED` still turns them off, as it did.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

NAMESPACE = "MaaS"
UNKNOWN = "unknown"
COUNT, MILLISECONDS = "Count", "Milliseconds"
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_ENCODER = msgspec.json.Encoder()


def metrics_disabled() -> bool:
    """Whether POWERTOOLS_METRICS_DISABLED turns metrics off (as Powertools reads it)."""
    return os.environ.get("POWERTOOLS_METRICS_DISABLED", "").strip().lower() in _TRUE


def write_record(
    dimensions: dict[str, str],
    figures: list[tuple[str, str, float]],
    namespace: str = NAMESPACE,
    *,
    enabled: bool | None = None,
) -> None:
    """Print one EMF record: `figures` (name, unit, value) filed under the one dimension set;
    `enabled` None reads POWERTOOLS_METRICS_DISABLED now."""
    if not figures or not (not metrics_disabled() if enabled is None else enabled):
        return
    record: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in figures],
                }
            ],
        },
        **dimensions,
    }
    for name, _, value in figures:
        record[name] = [float(value)]
    sys.stdout.write(_ENCODER.encode(record).decode() + "\n")


def model_loaded(model: str, version: str, seconds: float) -> None:
    """ModelLoadTime per (model, version), with `service` where POWERTOOLS_SERVICE_NAME is set."""
    dimensions = {"model": model, "version": version}
    service = os.environ.get("POWERTOOLS_SERVICE_NAME")
    if service:
        dimensions["service"] = service
    write_record(dimensions, [("ModelLoadTime", MILLISECONDS, seconds * 1000)])


class RequestMetrics:
    """What each request publishes, per model: Requests, Errors4xx, Errors5xx, EndToEndLatency,
    and for an answer InferenceLatency and Served (also per version, in a record of its own);
    and ColdStart, once, on the first request. `known(name)` says whether a path's model name
    is a model's, as `maas.metrics.emf.install_request_metrics` documents."""

    def __init__(
        self,
        *,
        namespace: str = NAMESPACE,
        service: str = "predict",
        known: Callable[[str], bool] | None = None,
    ) -> None:
        self.namespace = namespace
        self.service = service
        self.label = model_label(known)
        self._cold = True
        # Read once, as Powertools did when its Metrics was made: not per record.
        self.enabled = not metrics_disabled()

    def cold_start(self, function_name: str) -> None:
        """ColdStart per function on the first request of this process, as Powertools counts it."""
        if self._cold:
            self._cold = False
            write_record(
                {"function_name": function_name, "service": self.service},
                [("ColdStart", COUNT, 1)],
                self.namespace,
                enabled=self.enabled,
            )

    def served(
        self, figures: list[tuple[str, str, float]], model: str, version: str, inference_ms: float
    ) -> None:
        """The runtime's time and the answer: into the request's `figures`, and per version (the
        canary arm that answered) in a record of its own, whose service is the request's."""
        answer = [("InferenceLatency", MILLISECONDS, inference_ms), ("Served", COUNT, 1.0)]
        figures.extend(answer)
        dimensions = {"model": model, "version": version, "service": self.service}
        write_record(dimensions, answer, self.namespace, enabled=self.enabled)

    def finished(
        self, figures: list[tuple[str, str, float]], name: str | None, status: int, started: float
    ) -> None:
        """The request's record: its count, error class and end-to-end time, under its model."""
        figures.append(("Requests", COUNT, 1.0))
        if 400 <= status < 500:
            figures.append(("Errors4xx", COUNT, 1.0))
        elif status >= 500:
            figures.append(("Errors5xx", COUNT, 1.0))
        figures.append(("EndToEndLatency", MILLISECONDS, (time.perf_counter() - started) * 1000))
        dimensions = {"model": self.label(name, status), "service": self.service}
        write_record(dimensions, figures, self.namespace, enabled=self.enabled)


def model_label(known: Callable[[str], bool] | None) -> Callable[[str | None, int], str]:
    """The `model` dimension of a request for path name `name` that ended with `status`."""
    real: set[str] = set()  # names `known` confirmed (there are only as many as models)

    def label(name: str | None, status: int) -> str:
        if not name:
            return UNKNOWN
        if known is None:
            return name if status != HTTPStatus.NOT_FOUND else UNKNOWN
        # Once confirmed, a name stays a label (a deleted model's later requests count under
        # it): it cost a model's registration, so the set stays as small as the models.
        if name in real:
            return name
        try:
            exists = known(name)
        except Exception:  # a label must never fail the request it counts
            logger.warning("could not tell whether model %r exists; counting it as %s", name, UNKNOWN)
            return UNKNOWN
        if exists:
            real.add(name)
        return name if exists else UNKNOWN

    return label


__all__ = ["NAMESPACE", "RequestMetrics", "metrics_disabled", "model_label", "model_loaded", "write_record"]
