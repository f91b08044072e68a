"""A small OIP v2 HTTP client for the release gate: the real path, through the deployed API.

An API with IAM auth (API Gateway, `maas dev --auth iam`, `maas dev --deploy`) wants SigV4:
requests are signed for `execute-api` with the caller's usual credentials. By default they
are signed whenever credentials are found, wherever the API is; `sign=False` never signs,
`sign=True` requires credentials.
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

_REFUSED = {401: "the API wants a SigV4 signature", 403: "the API refused these credentials"}


class OipHttpClient:
    def __init__(self, base_url: str, *, sign: bool | None = None, region: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.region = region
        self._credentials = _found_credentials() if sign is not False else None
        if sign and self._credentials is None:
            raise MaasError("--sign: no AWS credentials were found to sign the API requests with")

    @property
    def signs(self) -> bool:
        return self._credentials is not None

    def ready(self) -> None:
        """Raises unless the API answers `/v2/health/ready` and accepts these credentials."""
        self._send("GET", "/v2/health/ready")

    def metadata(self, model: str, version: str | None = None) -> Any:
        """OIP model metadata of `version` (a number or an alias) of `model`, or of the model
        (with every version it serves) without one."""
        if version is None:
            return self._send("GET", f"/v2/models/{model}")
        return self._send("GET", f"/v2/models/{model}/versions/{version}")

    def infer(
        self, model: str, version: str | None, inputs: dict[str, np.ndarray]
    ) -> tuple[str, dict[str, np.ndarray], float]:
        """Run `inputs` on `version` (a number or an alias; None: the model's default); the
        version that answered, the outputs, and the round trip in milliseconds."""
        started = time.perf_counter()
        answer = self.infer_request(model, version, {"inputs": json_tensors(inputs)})
        elapsed_ms = (time.perf_counter() - started) * 1000
        outputs = {item["name"]: tensor_from_json(item) for item in answer["outputs"]}
        return str(answer["model_version"]), outputs, elapsed_ms

    def infer_request(self, model: str, version: str | None, request: dict[str, Any]) -> Any:
        """POST an OIP inference request as it is to `version` of `model` (None: its default);
        the server's answer. A refusal raises InvalidInput, a failure BackendUnavailable."""
        versions = f"/versions/{version}" if version is not None else ""
        return self._send("POST", f"/v2/models/{model}{versions}/infer", json.dumps(request).encode())

    def _send(self, method: str, path: str, body: bytes | None = None) -> Any:
        url = f"{self.base_url}{path}"
        headers = {"content-type": "application/json"} if body is not None else {}
        if self._credentials is not None:
            headers = self._signed(method, url, body, headers)
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                detail = json.loads(detail)["error"]
            if error.code in _REFUSED:
                signed = "signed" if self.signs else "not signed (--no-sign, or no credentials found)"
                detail = f"{detail} ({_REFUSED[error.code]}; the requests were {signed})"
            failure = InvalidInput if 400 <= error.code < 500 else BackendUnavailable
            raise failure(f"{method} {url} answered {error.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError) as error:
            raise BackendUnavailable(f"{method} {url} failed: {error}") from None

    def _signed(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(self._credentials, "execute-api", self.region or _session_region()).add_auth(request)
        return dict(request.headers.items())


def _found_credentials() -> Any:
    """The caller's AWS credentials (environment, profile, role; refreshed as they expire), or None."""
    import boto3

    return boto3.session.Session().get_credentials()


def _session_region() -> str:
    import boto3

    return boto3.session.Session().region_name or "us-east-1"
