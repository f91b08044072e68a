"""`maas dev`: the local stack on 127.0.0.1, serving the demo models through the real handler."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from maas.errors import ConfigError
from maas.local.demo import ensure_demo_models
from maas.local.gateway import LocalGateway, load_handler

if TYPE_CHECKING:
    from types import FrameType

logger = logging.getLogger(__name__)

# The source checkout `maas` was installed from (an editable install), where functions/ lives.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PREDICT_HANDLER = PROJECT_ROOT / "functions" / "predict" / "handler.py"


def prepare_environment(model_dir: Path, models: list[str]) -> None:
    """Set the variables the CDK app sets on the deployed function, plus fake AWS credentials."""
    os.environ["MAAS_MODEL_DIR"] = str(model_dir)
    os.environ["MAAS_PRELOAD"] = json.dumps(models)
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "maas-predict")
    # EMF lines on stdout are for CloudWatch; locally they would bury the request log.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


def run_dev(
    host: str, port: int, model_dir: Path, handler_path: Path = PREDICT_HANDLER, demo: bool = True
) -> int:
    """Serve until Ctrl-C or SIGTERM; returns the process exit code."""
    if not handler_path.is_file():
        raise ConfigError(
            f"maas dev runs the Lambda handler from a source checkout, and {handler_path} is missing; "
            "pass --handler PATH"
        )
    model_dir.mkdir(parents=True, exist_ok=True)
    models = ensure_demo_models(model_dir) if demo else []
    prepare_environment(model_dir.resolve(), models)
    gateway = LocalGateway(host, port, load_handler(handler_path))
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    server = threading.Thread(target=gateway.serve_forever, name="maas-gateway", daemon=True)
    server.start()
    print(
        f"maas dev: serving {', '.join(models) or 'no demo models'} from {model_dir} at {gateway.url}",
        flush=True,
    )
    print(f"  try: curl {gateway.url}/v2/models/digits", flush=True)
    stop.wait()
    gateway.shutdown()
    gateway.server_close()
    print("maas dev: stopped", flush=True)
    return 0
