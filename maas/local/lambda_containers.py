"""The embedded Lambda's warm containers: `LambdaContainers` runs each function version that
moto's Lambda invokes (and each route of a deployed HTTP API) in a pool of local worker
processes, and turns the EMF records of their logs into CloudWatch metrics
(`put_emf_metrics`), as CloudWatch Logs does for a real function. The embedded AWS owns one
and hands it to the Lambda extension (maas.local.moto.awslambda)."""

from __future__ import annotations

import json
import os
from typing import Any

from maas.settings import lambda_tmp_budget_mb


class LambdaContainers:
    """The embedded Lambda's warm containers: a pool of worker processes (maas.local.workers)
    per function version (code and environment), up to `size` of them as invocations overlap;
    each serves one invocation at a time. Failures come back as Lambda reports them."""

    def __init__(self, endpoint: str = "http://127.0.0.1:4566") -> None:
        import threading

        from maas.local.workers import default_pool_size

        self.endpoint = endpoint
        self.size = default_pool_size()
        self._pools: dict[str, Any] = {}
        self._guard = threading.Lock()

    def invoke(self, function: Any, event: Any) -> tuple[str, bool]:
        """The function's answer as JSON, and whether it is an error payload."""
        from maas.local.workers import FunctionError, NoWorker, WorkerCrashed, WorkerTimedOut

        try:
            return json.dumps(self._pool(function).invoke(event)), False
        except FunctionError as error:
            return json.dumps(error.payload), True
        except WorkerTimedOut as error:
            failure = {
                "errorMessage": f"Task timed out after {error.seconds:.2f} seconds",
                "errorType": "Sandbox.Timedout",
            }
        except WorkerCrashed as error:
            failure = {"errorMessage": error.message, "errorType": "Runtime.ExitError"}
        except NoWorker as error:
            failure = {"errorMessage": error.message, "errorType": "Runtime.Unavailable"}
        return json.dumps(failure), True

    def stop(self) -> None:
        with self._guard:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.stop()

    def _key(self, function: Any) -> str:
        return f"{function.function_arn}:{function.code_sha_256}:{sorted(function.environment_vars.items())}"

    def _pool(self, function: Any) -> Any:
        import io
        import tempfile
        import zipfile
        from pathlib import Path

        from maas.local.workers import FunctionCode, FunctionPool

        key = self._key(function)
        with self._guard:
            if key in self._pools:
                return self._pools[key]
            code_dir = tempfile.mkdtemp(prefix=f"maas-lambda-{function.function_name[:40]}-")
            with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
                archive.extractall(code_dir)
            environment = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("MAAS_", "AWS_", "POWERTOOLS_"))},
                **function.environment_vars,
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": function.region,
                "AWS_DEFAULT_REGION": function.region,
                "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
                # The host's temporary directory stands in for the function's own /tmp.
                "MAAS_CACHE_DISK_MB": str(lambda_tmp_budget_mb(int(function.ephemeral_storage))),
                "MAAS_LAMBDA_TIMEOUT": str(function.timeout),
            }
            code = FunctionCode(
                function.function_name, Path(code_dir), function.handler, environment, float(function.timeout)
            )
            self._pools[key] = FunctionPool(code, size=self.size, on_log=self._log)
            return self._pools[key]

    def _log(self, line: str) -> None:
        """A line of a function's log: EMF records become CloudWatch metrics, as CloudWatch Logs
        makes them from a Lambda's output; other lines are shown with MAAS_LAMBDA_LOGS=1."""
        import sys

        if line.startswith("{") and '"_aws"' in line:
            try:
                put_emf_metrics(self.endpoint, json.loads(line))
                return
            except (ValueError, KeyError, TypeError):
                pass
        if os.environ.get("MAAS_LAMBDA_LOGS") == "1":
            sys.stderr.write(line)


class _Installed:
    """The containers of the embedded AWS that started last: moto's classes are process-wide,
    and each embedded AWS hands its own containers in (`use_containers`)."""

    containers: LambdaContainers | None = None


def use_containers(lambda_containers: LambdaContainers) -> None:
    """Run deployed functions in `lambda_containers` from now on."""
    _Installed.containers = lambda_containers


def containers() -> LambdaContainers:
    """The warm containers deployed functions run in (those of the running embedded AWS)."""
    if _Installed.containers is None:
        raise RuntimeError("no embedded AWS has handed in its Lambda containers")
    return _Installed.containers


def put_emf_metrics(endpoint: str, record: dict[str, Any]) -> None:
    """PutMetricData for one Embedded Metric Format record (what CloudWatch extracts from logs)."""
    from datetime import UTC, datetime

    import boto3

    metadata = record["_aws"]
    when = datetime.fromtimestamp(metadata["Timestamp"] / 1000, tz=UTC)
    client = boto3.client(
        "cloudwatch", endpoint_url=endpoint, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    for directive in metadata["CloudWatchMetrics"]:
        data = []
        for dimension_set in directive["Dimensions"]:
            dimensions = [{"Name": name, "Value": str(record[name])} for name in dimension_set]
            for metric in directive["Metrics"]:
                value = record[metric["Name"]]
                datum: dict[str, Any] = {
                    "MetricName": metric["Name"],
                    "Dimensions": dimensions,
                    "Timestamp": when,
                }
                datum.update(
                    {"Values": [float(v) for v in value]}
                    if isinstance(value, list)
                    else {"Value": float(value)}
                )
                if metric.get("Unit"):
                    datum["Unit"] = metric["Unit"]
                data.append(datum)
        if data:
            client.put_metric_data(Namespace=directive["Namespace"], MetricData=data)


__all__ = ["LambdaContainers", "containers", "put_emf_metrics", "use_containers"]
