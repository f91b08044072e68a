"""One warm Lambda "container" of the embedded AWS: a Python process that imports a function's
handler once and answers invocations, one JSON line in and one JSON line out.

    python -m maas.local.lambda_worker CODE_DIR MODULE.FUNCTION

The handler's own output (logs, EMF lines) goes to stderr; the protocol has stdout to itself.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback


def main() -> None:
    code_dir, handler_path = sys.argv[1], sys.argv[2]
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # print() in the handler lands in the log, not in the protocol
    sys.stdout = sys.stderr
    sys.path.insert(0, code_dir)
    module_name, function_name = handler_path.rsplit(".", 1)
    from maas.local.context import LocalLambdaContext

    handler = getattr(importlib.import_module(module_name), function_name)
    for line in sys.stdin:
        event = json.loads(line)
        timeout = int(os.environ.get("MAAS_LAMBDA_TIMEOUT", "30"))
        try:
            answer = {"result": handler(event, LocalLambdaContext(timeout_seconds=timeout))}
        except Exception as error:  # the invocation fails; the container lives on, as in Lambda
            traceback.print_exc()
            answer = {"error": {"errorMessage": str(error), "errorType": type(error).__name__}}
        protocol.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
