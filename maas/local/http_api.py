"""Deployed HTTP APIs served on loopback: the embedded AWS records API Gateway v2 resources
(moto has no model for them), and this turns each recorded API into a `LocalGateway`.

Each route invokes its integration's Lambda function (run in the embedded AWS's Lambda containers, maas.local.moto.awslambda)
with the same payload-2.0 event API Gateway sends. Routes with IAM authorization check
SigV4 signatures made with the local stack's credentials (testing / testing).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maas.local.gateway import LocalGateway

logger = logging.getLogger(__name__)


@dataclass
class _Api:
    gateway: LocalGateway
    integrations: dict[str, str] = field(default_factory=dict)  # integration id -> function ARN


class LoopbackApis:
    def __init__(self) -> None:
        self._apis: dict[str, _Api] = {}
        self._guard = threading.Lock()
        self._next_port = 0

    def serve_first_on(self, port: int) -> None:
        """The next API started listens on `port` (`maas dev --deploy --port`); later ones on free ports."""
        with self._guard:
            self._next_port = port

    def url(self, api_id: str) -> str:
        """Start the API's gateway on a loopback port (once): the one `serve_first_on` named,
        else a free one; its URL."""
        from maas.local.gateway import LocalGateway

        with self._guard:
            if api_id not in self._apis:
                gateway = LocalGateway("127.0.0.1", self._next_port, {})
                self._next_port = 0
                threading.Thread(target=gateway.serve_forever, name=f"api-{api_id}", daemon=True).start()
                self._apis[api_id] = _Api(gateway)
            return self._apis[api_id].gateway.url

    def integration(self, api_id: str, integration_id: str, properties: dict[str, Any]) -> None:
        self.url(api_id)
        self._apis[api_id].integrations[integration_id] = str(properties.get("IntegrationUri", ""))

    def route(self, api_id: str, properties: dict[str, Any], region: str) -> None:
        """Serve a route `METHOD /path[/{proxy+}]` with target `integrations/<id>`; with IAM
        authorization, signatures must be for execute-api in `region`, the API's."""
        self.url(api_id)
        api = self._apis[api_id]
        route_key = str(properties.get("RouteKey", ""))
        path = route_key.split(" ", 1)[-1].replace("{proxy+}", "").rstrip("/") or "/"
        integration = str(properties.get("Target", "")).removeprefix("integrations/")
        if properties.get("AuthorizationType") == "AWS_IAM" and api.gateway.verifier is None:
            from maas.local.sigv4 import SigV4Verifier

            api.gateway.verifier = SigV4Verifier("testing", "testing", region=region)

        api.gateway.add_route(path, _Integration(api, integration))

    def stop(self) -> None:
        with self._guard:
            for api in self._apis.values():
                api.gateway.shutdown()
                api.gateway.server_close()
            self._apis.clear()


class _Integration:
    """A route's Lambda integration: as many invocations at once as the function may have
    warm workers (the gateway reads `concurrency`)."""

    def __init__(self, api: _Api, integration: str) -> None:
        from maas.local.lambda_containers import containers

        self.api = api
        self.integration = integration
        self.concurrency = containers().size

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        return _invoke_function(self.api.integrations[self.integration], event)


def _invoke_function(arn: str, event: dict[str, Any]) -> Any:
    from moto.awslambda.models import lambda_backends

    from maas.local.lambda_containers import containers

    # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
    parts = arn.split(":")
    region, account, name = parts[3], parts[4], parts[6]
    qualifier = parts[7] if len(parts) > 7 else None
    function = lambda_backends[account][region].get_function(name, qualifier)
    result, errored = containers().invoke(function, event)
    if errored:
        raise RuntimeError(f"function {name} failed: {result}")
    return json.loads(result)


APIS = LoopbackApis()
