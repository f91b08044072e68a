"""The embedded AWS: moto's server on loopback, for `maas dev` and the tests.

moto's threaded server runs DynamoDB requests concurrently with no lock, so two
conditional writes can both pass their condition, which real DynamoDB never allows.
DynamoDB requests are therefore applied one at a time here, restoring the atomicity
of conditional writes and transactions the registry relies on. Calls moto lacks are
added by `maas.local.moto`.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


class _AtomicDynamoDB:
    """WSGI middleware: one DynamoDB request at a time; other services untouched."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with self.lock:
                # Produce the whole body under the lock: the write happens while it is built.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def start_embedded_aws(port: int) -> tuple[EmbeddedAws, str]:
    """An EmbeddedAws on 127.0.0.1:`port`, started, and its endpoint; ConfigError if the port is taken."""
    from maas.errors import ConfigError

    aws = EmbeddedAws("127.0.0.1", port)
    try:
        return aws, aws.start()
    except OSError as error:
        raise ConfigError(
            f"cannot listen on 127.0.0.1:{port} for the embedded AWS ({error.strerror}); pass --aws-port"
        ) from None


class EmbeddedAws:
    """moto's server in a background thread on `host:port` (0 picks a free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._mappings: Any = None
        # Where deployed functions run: warm local processes, stopped with this AWS.
        from maas.local.lambda_containers import LambdaContainers

        self.containers = LambdaContainers()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from maas.local.moto import install

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per AWS call buries everything else
        app = _AtomicDynamoDB(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self.containers.endpoint = self.endpoint  # now that the port is known
        install(self.containers)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="maas-embedded-aws", daemon=True
        )
        self._thread.start()
        from maas.local.stream_trigger import StreamMappings

        self._mappings = StreamMappings(self.endpoint)
        self._mappings.start()
        return self.endpoint

    def stop(self) -> None:
        if self._mappings is not None:
            self._mappings.stop()
        self.containers.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
