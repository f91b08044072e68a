"""`maas dev`: the local stack on 127.0.0.1.

The embedded AWS (moto's server) holds the registry table and the artifact bucket;
every model under `--models` (the demo models included) is registered and promoted
to `prod`; the gateway routes `/v2/...` to the predict handler, `/registry/...` to the
registry handler and `/metrics` to the exporter, the same Lambda handlers that run in
AWS. Each function runs in its own worker processes (`maas.local.workers`), several warm
ones at once as Lambda runs containers, and batch files in a function of their own: a
model that crashes its runtime takes one worker down, which answers 503 naming the model
and is replaced, never the gateway, the embedded AWS or the other functions. The
handlers' EMF output becomes metrics in the embedded CloudWatch, as CloudWatch Logs makes
them, so `/metrics` and `maas exporter serve` show them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.errors import ConfigError, MaasError
from maas.local.aws import start_embedded_aws
from maas.local.demo import ensure_demo_models
from maas.local.emf_logs import EmfToCloudWatch
from maas.local.gateway import LocalGateway
from maas.local.state import LocalState
from maas.local.stream_trigger import DynamoDBStreamTrigger, dead_letter_queue
from maas.local.trigger import SqsTrigger
from maas.local.workers import (
    FunctionCode,
    FunctionPool,
    NoWorker,
    WorkerCrashed,
    WorkerTimedOut,
    default_pool_size,
)
from maas.registry.artifacts import sha256_of
from maas.runtimes import SUFFIXES
from maas.settings import lambda_tmp_budget_mb
from maas.sources import is_version_number

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

    from maas.local.sigv4 import SigV4Verifier
    from maas.registry import Registry

logger = logging.getLogger(__name__)

# The source checkout `maas` was installed from (an editable install), where functions/ lives.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = PROJECT_ROOT / "functions"
REGISTRY_TABLE = "maas-registry"
ARTIFACT_BUCKET = "maas-artifacts"
IDEMPOTENCY_TABLE = "maas-idempotency"
BATCH_QUEUE = "maas-batch"
REGION = "us-east-1"
# Route prefix -> (function, handler file under --functions, timeout in seconds, memory in MB),
# as the example stack deploys them: the memory sets the request and cache budgets, as in Lambda.
FUNCTIONS_BY_ROUTE = {
    "/registry": ("maas-registry", "registry", 30.0, 1200),
    "/metrics": ("maas-metrics", "metrics", 30.0, 512),
    "/": ("maas-predict", "predict", 30.0, 1024),
}
# Batch files run the predict code in a function of their own, with Lambda's longest timeout.
BATCH_FUNCTION = ("maas-batch", "predict", 900.0, 1024)
# The control plane's reconciler, on the registry table's stream, as the stack deploys it.
RECONCILER_FUNCTION = ("maas-reconciler", "reconciler", 300.0, 512)
RECONCILER_DLQ = "maas-reconciler-dlq"
# How often the reconciler sweeps the endpoints: moto sends no SageMaker state-change events.
SWEEP_SECONDS = 2.0
# How long the embedded SageMaker takes over an endpoint update, so that `updating` is seen.
SAGEMAKER_UPDATE_SECONDS = "2"


def use_embedded_aws(endpoint: str) -> None:
    """Point every AWS client of this process (and its handlers) at the embedded AWS, with fake
    credentials so that nothing can reach a real account by mistake."""
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)


def create_registry(table: str = REGISTRY_TABLE, bucket: str = ARTIFACT_BUCKET) -> Registry:
    """The registry table and artifact bucket, created on the current endpoint."""
    import boto3

    from maas.registry import ArtifactStore, DynamoDBStore, Registry, table_definition

    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(**table_definition(table))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    # Versioned as the stack's bucket is: each upload of a batch file has its own version,
    # so the same bytes uploaded again are a new job.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return Registry(DynamoDBStore(table, client=dynamodb), ArtifactStore(bucket, client=s3), user="maas-dev")


def create_batch_wiring(bucket: str = ARTIFACT_BUCKET) -> str:
    """What the CDK app's BatchTrigger makes: a queue with a dead-letter queue, and uploads under
    inputs/ notifying it (the idempotency table: `create_idempotency_table`). Returns the queue URL."""
    import boto3

    from maas.local.trigger import create_batch_queue

    sqs = boto3.client("sqs")
    # A short visibility timeout: locally a failed file is retried within seconds.
    queue_url, queue_arn = create_batch_queue(sqs, BATCH_QUEUE, max_receives=3, visibility_timeout=5)
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "inputs/"}]}},
                }
            ]
        },
    )
    return str(queue_url)


def create_idempotency_table() -> None:
    """The table the batch function remembers finished files in, as the CDK app makes it."""
    import boto3

    boto3.client("dynamodb").create_table(
        TableName=IDEMPOTENCY_TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )


def register_directory(registry: Registry, root: Path) -> list[str]:
    """Register every `<name>/<version>/model.*` under `root` in version order and point `prod`
    at the last, for each model not registered before; returns the names of the models.

    A file whose bytes are a version of its model already (registered before a restart) is not
    registered again, and the aliases of a model registered before stay as they were left (a
    `prod` moved or deleted stays so). A file that cannot be registered
    is reported and skipped: one broken model does not keep the others from being served.
    """
    from maas.control import ControlPlane

    control = ControlPlane(registry)  # the models folder's changes are model changes like any other
    suffixes = set(SUFFIXES)
    names = []
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        name = model_dir.name
        files = sorted(
            (f for f in model_dir.glob("*/model.*") if f.suffix in suffixes),
            key=lambda f: (0, int(f.parent.name)) if is_version_number(f.parent.name) else (1, 0),
        )
        known = _registered_digests(registry, name)
        last = None
        for artifact in files:
            digest = sha256_of(artifact)
            if digest in known:
                last = known[digest]
                continue
            try:
                last = control.register(name, artifact, labels={"source": str(artifact.parent)}).version
            except MaasError as error:
                logger.warning("skipped %s: %s", artifact, error.message)
        if not known:  # new here: served at once; else its aliases are as the user left them
            if last is None:
                continue  # nothing of it could be registered
            control.promote(name, "prod", last)
        names.append(name)
    return names


def _registered_digests(registry: Registry, name: str) -> dict[str, int]:
    """sha256 -> version number, for every version `name` has (none if it is no model yet)."""
    if not registry.exists(name):
        return {}
    digests: dict[str, int] = {}
    token = None
    while True:
        page = registry.versions(name, limit=100, token=token)
        digests.update({version.sha256: version.version for version in page.items})
        token = page.next_token
        if token is None:
            return digests


def run_dev(
    host: str,
    port: int,
    model_dir: Path,
    *,
    functions: Path = FUNCTIONS,
    demo: bool = True,
    aws_port: int = 4566,
    alias_ttl: float = 5.0,
    auth: str = "none",
    workers: int | None = None,
    state_dir: Path | None = None,
    fresh: bool = False,
) -> int:
    """Serve until Ctrl-C or SIGTERM, with up to `workers` warm worker processes per function
    (default: `default_pool_size()`); returns the process exit code. With `state_dir`, the
    registry, the idempotency records and the bucket are put back from there at start (unless
    `fresh`) and written there at stop."""
    handlers = [functions / folder / "handler.py" for _, folder, _, _ in FUNCTIONS_BY_ROUTE.values()]
    missing = [str(path) for path in handlers if not path.is_file()]
    if missing:
        raise ConfigError(
            f"maas dev runs the Lambda handlers from a source checkout, and {', '.join(missing)} is missing; "
            "pass --functions DIR"
        )
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)  # `-v`: EMF records are echoed too
    model_dir.mkdir(parents=True, exist_ok=True)
    if demo:
        ensure_demo_models(model_dir)
    aws, endpoint = start_embedded_aws(aws_port)
    try:
        use_embedded_aws(endpoint)
        import boto3

        state, models, queue_url = _set_up_aws(model_dir, state_dir, fresh=fresh)
        os.environ.update(
            MAAS_IDEMPOTENCY_TABLE=IDEMPOTENCY_TABLE,
            MAAS_BATCH_QUEUE_URL=queue_url,  # where a large batch file sends its parts
            MAAS_REGISTRY_TABLE=REGISTRY_TABLE,
            MAAS_ARTIFACT_BUCKET=ARTIFACT_BUCKET,
            MAAS_ALIAS_TTL_SECONDS=str(alias_ttl),
            MAAS_ARTIFACT_CACHE_DIR=tempfile.mkdtemp(prefix="maas-dev-artifacts-"),
            MAAS_PRELOAD=json.dumps(models),
            MAAS_SAGEMAKER_ENDPOINT_PREFIX=os.environ.get("MAAS_SAGEMAKER_ENDPOINT_PREFIX", "maas"),
        )
        os.environ.setdefault("MAAS_SAGEMAKER_UPDATE_SECONDS", SAGEMAKER_UPDATE_SECONDS)
        os.environ.pop("MAAS_MODEL_DIR", None)
        use_embedded_cloudwatch()
        # The handlers' EMF lines go to the embedded CloudWatch, not to the request log.
        emf = EmfToCloudWatch(boto3.client("cloudwatch"), echo=verbose)
        emf.start()
        size = workers or default_pool_size()
        pools = {
            prefix: _pool(functions, function, size, emf.write)
            for prefix, function in FUNCTIONS_BY_ROUTE.items()
        }
        batch = _pool(functions, BATCH_FUNCTION, size, emf.write)
        reconciler = _pool(functions, RECONCILER_FUNCTION, 1, emf.write)
        try:
            routes: dict[str, Any] = {prefix: PooledFunction(pool) for prefix, pool in pools.items()}
            try:
                gateway = LocalGateway(host, port, routes, verifier=_verifier(auth))
            except OSError as error:
                raise ConfigError(f"cannot listen on {host}:{port} ({error.strerror}); pass --port") from None
            pools["/"].warm()  # every predict worker now; the others start with their first request
            pools["/registry"].warm(1)
            # Lambda's event source mappings: the batch queue (as many pollers as batch workers,
            # so that the parts of a split file run side by side), and the registry table's stream.
            triggers: list[SqsTrigger | DynamoDBStreamTrigger] = [
                SqsTrigger(boto3.client("sqs"), queue_url, batch.invoke, pollers=size),
                reconciler_trigger(reconciler.invoke),
            ]
            for trigger in triggers:
                trigger.start()
            try:
                return _serve(gateway, models, endpoint)
            finally:
                for trigger in triggers:
                    trigger.stop()
        finally:
            for pool in [*pools.values(), batch, reconciler]:
                pool.stop()
            emf.stop()
            if state is not None:
                _save_state(state)
    finally:
        aws.stop()
        print("maas dev: stopped", flush=True)  # the last line: workers, state and AWS are done


def reconciler_trigger(invoke: Callable[[dict[str, Any]], Any]) -> DynamoDBStreamTrigger:
    """The registry table's stream, filtered to alias changes as the stack's event source
    mapping is, calling the reconciler; what keeps failing goes to its dead-letter queue."""
    import boto3

    from maas.control.events import changed_alias

    sqs = boto3.client("sqs")
    sagemaker = boto3.client("sagemaker")
    prefix = os.environ.get("MAAS_SAGEMAKER_ENDPOINT_PREFIX", "maas")

    def has_endpoints() -> bool:
        # The schedule invokes the reconciler for nothing while no endpoint exists: skip it then.
        return bool(sagemaker.list_endpoints(NameContains=prefix, MaxResults=1).get("Endpoints"))

    return DynamoDBStreamTrigger(
        boto3.client("dynamodb"),
        boto3.client("dynamodbstreams"),
        REGISTRY_TABLE,
        invoke,
        accept=lambda record: changed_alias(record) is not None,
        sweep_seconds=SWEEP_SECONDS,
        sweep_when=has_endpoints,
        on_failure=dead_letter_queue(sqs, sqs.create_queue(QueueName=RECONCILER_DLQ)["QueueUrl"]),
    )


def _set_up_aws(
    model_dir: Path, state_dir: Path | None, *, fresh: bool
) -> tuple[LocalState | None, list[str], str]:
    """The tables and the bucket, with the last state put back, the models under `model_dir`
    registered, and the batch wiring: (the state, the models `prod` serves, the batch queue URL)."""
    registry = create_registry()
    create_idempotency_table()
    state = _restored_state(state_dir, fresh=fresh)
    register_directory(registry, model_dir)
    return state, _served_models(registry), create_batch_wiring()


def _served_models(registry: Registry) -> list[str]:
    """Every model a request without a version reaches (it has a `prod` alias): those of the
    models folder and those registered before a restart, not one whose `prod` was deleted."""
    names, token = [], None
    while True:
        page = registry.models(limit=100, token=token)
        names += [
            head.name for head in page.items if any(a.alias == "prod" for a in registry.aliases(head.name))
        ]
        token = page.next_token
        if token is None:
            return names


def _local_state(state_dir: Path) -> LocalState:
    return LocalState(state_dir, tables=[REGISTRY_TABLE, IDEMPOTENCY_TABLE], bucket=ARTIFACT_BUCKET)


def _restored_state(state_dir: Path | None, *, fresh: bool) -> LocalState | None:
    """The state under `state_dir`, put back into the embedded AWS (before the bucket notifies
    batch inference, so restored inputs are not run again); None without a `state_dir`."""
    if state_dir is None:
        return None
    import boto3

    state = _local_state(state_dir)
    if fresh:
        state.clear()
    elif state.exists():
        try:
            restored = state.restore(boto3.client("dynamodb"), boto3.client("s3"))
        except (OSError, ValueError, KeyError) as error:
            raise ConfigError(
                f"cannot restore maas dev's state from {state.snapshot} ({error}); start with --fresh "
                "to begin empty (the snapshot is then replaced at the next stop)"
            ) from None
        print(f"maas dev: restored {restored} from {state_dir}", flush=True)
    return state


def _save_state(state: LocalState) -> None:
    import boto3

    try:
        state.save(boto3.client("dynamodb"), boto3.client("s3"))
    except Exception as error:  # the server is stopping: say what was not kept, and stop anyway
        logger.error("maas dev: could not save its state to %s: %s", state.root, error)
        return
    print(f"maas dev: state saved to {state.root} (--fresh starts empty)", flush=True)


def _pool(
    functions: Path, function: tuple[str, str, float, int], size: int, log: Callable[[str], Any]
) -> FunctionPool:
    """The worker pool of one function: its handler file, and this process's environment (the
    embedded AWS, the MAAS_* settings) with its own name, timeout and memory, as Lambda sets them."""
    name, folder, timeout, memory_mb = function
    environment = {
        # The host's temporary directory is not a /tmp of the function's own: the cache gets the
        # budget Lambda's default 512 MB /tmp would give it, unless MAAS_CACHE_DISK_MB says otherwise.
        "MAAS_CACHE_DISK_MB": str(lambda_tmp_budget_mb()),
        **os.environ,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "MAAS_LAMBDA_TIMEOUT": str(int(timeout)),
    }
    code = FunctionCode(name, functions / folder, "handler.handler", environment, timeout)
    return FunctionPool(code, size=size, on_log=log)


class PooledFunction:
    """A gateway route served by a pool of worker processes. What API Gateway would answer when
    the function cannot (its process crashed, it timed out, no worker is free) is answered
    here in the API's own shape, naming the model the request was for."""

    def __init__(self, pool: FunctionPool) -> None:
        self.pool = pool
        self.concurrency = pool.size  # the gateway runs this many invocations at once

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        try:
            return self.pool.invoke(event)
        except WorkerCrashed as crash:
            message = (
                f"{_subject(event, self.pool.code.name)} crashed the process serving it ({crash.ending}); "
                "maas dev has started another: retry, and check the model file if it happens again"
            )
            return _error_result(503, message)
        except WorkerTimedOut as timeout:
            return _error_result(
                504, f"{_subject(event, self.pool.code.name)} timed out after {timeout.seconds:g} s"
            )
        except NoWorker as error:
            return _error_result(503, error.message)


def _subject(event: dict[str, Any], function: str) -> str:
    """What a request was for: "model 'digits' version '2'", or the function's name."""
    parts = str(event.get("rawPath", "")).strip("/").split("/")
    if len(parts) >= 3 and parts[:2] == ["v2", "models"]:
        if len(parts) >= 5 and parts[3] == "versions":
            return f"model '{parts[2]}' version '{parts[4]}'"
        return f"model '{parts[2]}'"
    return f"function {function}"


def _error_result(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", "retry-after": "1"},
        "body": json.dumps({"error": message}),
    }


def use_embedded_cloudwatch() -> None:
    """The functions publish EMF (whatever the environment says, as in Lambda) and the
    exporter reads the embedded CloudWatch, which has no lag to wait for and computes no
    percentiles; MAAS_EXPORTER_* variables still override the exporter's settings."""
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
    os.environ.setdefault("MAAS_EXPORTER_DELAY", "0")
    os.environ.setdefault("MAAS_EXPORTER_INTERVAL", "1")
    os.environ.setdefault("MAAS_EXPORTER_STATS", '["Sum", "Average", "Maximum"]')


def _serve(gateway: LocalGateway, models: list[str], endpoint: str) -> int:
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    threading.Thread(target=gateway.serve_forever, name="maas-gateway", daemon=True).start()
    print(f"maas dev: serving {', '.join(models) or 'no models'} at {gateway.url}", flush=True)
    print(f"  OIP API:      curl {gateway.url}/v2/models/digits", flush=True)
    print(f"  registry API: curl {gateway.url}/registry/models", flush=True)
    print(
        f"  metrics:      curl {gateway.url}/metrics  "
        f"(or: maas exporter serve --endpoint-url {endpoint} --delay 0)",
        flush=True,
    )
    print(f"  CLI:          export AWS_ENDPOINT_URL={endpoint}  (then: maas models list)", flush=True)
    print(
        "  batch:        maas batch submit rows.jsonl --model digits  (uploads to s3://maas-artifacts/inputs/)",
        flush=True,
    )
    stop.wait()
    gateway.shutdown()
    gateway.server_close()
    return 0


def _verifier(auth: str) -> SigV4Verifier | None:
    """`--auth iam`: requests must be SigV4-signed with MAAS_DEV_ACCESS_KEY_ID and
    MAAS_DEV_SECRET_ACCESS_KEY (default: testing / testing, the local stack's credentials)."""
    if auth == "none":
        return None
    from maas.local.sigv4 import SigV4Verifier

    return SigV4Verifier(
        os.environ.get("MAAS_DEV_ACCESS_KEY_ID", "testing"),
        os.environ.get("MAAS_DEV_SECRET_ACCESS_KEY", "testing"),
        region=REGION,
    )
