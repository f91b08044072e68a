"""A small OIP v2 HTTP client for the release gate: the real path, through the deployed API.

Against AWS the API wants SigV4 (IAM auth): requests are signed for `execute-api` with
the caller's usual credentials. Against `maas dev` on loopback they go unsigned.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from maas.errors import BackendUnavailable, InvalidInput, MaasError
from maas.protocol import json_tensors, tensor_from_json


class OipHttpClient:
    def __init__(self, base_url: str, *, sign: bool | None = None, region: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        local = any(host in self.base_url for host in ("://127.0.0.1", "://localhost"))
        self.sign = (not local) if sign is None else sign
        self.region = region

    def infer(
        self, model: str, version: str, inputs: dict[str, np.ndarray]
    ) -> tuple[str, dict[str, np.ndarray], float]:
        """Run `inputs` on `version` (a number or an alias); the version that answered, the
        outputs, and the round trip in milliseconds."""
        body = json.dumps({"inputs": json_tensors(inputs)}).encode()
        url = f"{self.base_url}/v2/models/{model}/versions/{version}/infer"
        started = time.perf_counter()
        answer = self._post(url, body)
        elapsed_ms = (time.perf_counter() - started) * 1000
        outputs = {item["name"]: tensor_from_json(item) for item in answer["outputs"]}
        return str(answer["model_version"]), outputs, elapsed_ms

    def _post(self, url: str, body: bytes) -> Any:
        headers = {"content-type": "application/json"}
        if self.sign:
            headers = self._signed(url, body, headers)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                detail = json.loads(detail)["error"]
            failure = InvalidInput if 400 <= error.code < 500 else BackendUnavailable
            raise failure(f"POST {url} answered {error.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError) as error:
            raise BackendUnavailable(f"POST {url} failed: {error}") from None

    def _signed(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.session.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise MaasError("the API needs SigV4 and no AWS credentials were found")
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(credentials, "execute-api", self.region or session.region_name or "us-east-1").add_auth(
            request
        )
        return dict(request.headers.items())
