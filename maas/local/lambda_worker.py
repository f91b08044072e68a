"""One warm Lambda "container" on this machine: a Python process that imports a function's
handler once and answers invocations, one JSON line in and one JSON line out.

    python -m maas.local.lambda_worker CODE_DIR MODULE.FUNCTION

Once the handler is imported (the init phase) it writes {"ready": true}. The handler's own
output (logs, EMF lines) goes to stderr; the protocol has stdout to itself. The worker ends
when its stdin closes, and it ignores Ctrl-C, which reaches every process of the terminal:
the process that started it stops it.
"""

from __future__ import annotations

import faulthandler
import importlib
import json
import os
import signal
import sys
import traceback


def main() -> None:
    code_dir, handler_path = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # print() in the handler lands in the log, not in the protocol
    sys.stdout = sys.stderr
    faulthandler.enable()  # a crash in a runtime's native code leaves the Python stack in the log
    sys.path.insert(0, code_dir)
    module_name, function_name = handler_path.rsplit(".", 1)
    from maas.local.context import LocalLambdaContext

    handler = getattr(importlib.import_module(module_name), function_name)
    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "maas-local")
    timeout = int(float(os.environ.get("MAAS_LAMBDA_TIMEOUT", "30")))
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        event = json.loads(line)
        try:
            context = LocalLambdaContext(function_name=name, timeout_seconds=timeout)
            answer = {"result": handler(event, context)}
        except Exception as error:  # the invocation fails; the container lives on, as in Lambda
            traceback.print_exc()
            answer = {"error": {"errorMessage": str(error), "errorType": type(error).__name__}}
        protocol.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
