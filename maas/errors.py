"""One error hierarchy for the whole library.

Every error carries the HTTP status it maps to; the transport adapters turn any
`MaasError` into an OIP `{"error": "..."}` body in exactly one place each.
"""

from __future__ import annotations

import re


class MaasError(Exception):
    """Base of every error maas raises on purpose. `status` is the HTTP status it maps to."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(MaasError):
    """The request is malformed or does not match the model's signature."""

    status = 400


class ModelNotFound(MaasError):
    """No model (or version) by that name exists."""

    status = 404

    def __init__(
        self, name: str, version: str | None = None, *, alias: str | None = None, why: str = "not found"
    ) -> None:
        if alias:
            what = f"alias '{alias}' of model '{name}'"
        elif version:
            what = f"model '{name}' version '{version}'"
        else:
            what = f"model '{name}'"
        super().__init__(f"{what} {why}")
        self.name = name
        self.version = version


class ModelNotReady(MaasError):
    """The model exists but cannot serve now, typically because its artifact failed to load."""

    status = 503


class BackendUnavailable(MaasError):
    """A remote model server (a SageMaker endpoint) is throttling or unreachable after retries."""

    status = 503


class InferenceError(MaasError):
    """The runtime failed while predicting on valid input."""

    status = 500


class BudgetExceeded(MaasError):
    """A request needed more memory than one request may use, or would answer with more
    than a response may carry; the same request will be refused again."""

    status = 507


class DeadlineExceeded(MaasError):
    """A prediction ran past the request deadline and was stopped."""

    status = 504


class ArtifactError(MaasError):
    """A model file is missing, corrupt, or of a kind no installed runtime can load."""

    status = 503


class ConfigError(MaasError):
    """Settings or a configuration file are missing or wrong."""

    status = 500


class ConflictError(MaasError):
    """A conditional write lost to a concurrent writer, or a rule refuses the change."""

    status = 409


class QualityGateFailed(MaasError):
    """An optimized model lost more quality than allowed; nothing was written."""

    status = 422


# A server's file paths (`/tmp/maas-x1/model.onnx`, ONNX Runtime's `/onnxruntime_src/...cc:123`)
# tell an attacker about the host and tell a client nothing it can act on.
# A path may follow a colon ("failed:/onnxruntime_src/..."); a URL's "//host/..." is no path.
_SERVER_PATH = re.compile(r"(?<![\w./])/(?:[\w.+-]+/)+[\w.+-]*(?::\d+)?")


def without_paths(text: str) -> str:
    """`text` with every absolute file path replaced by `<path>`: for messages of third-party
    libraries (runtimes, parsers) that end up in a client's error body."""
    return _SERVER_PATH.sub("<path>", text)
