"""A model served by a SageMaker endpoint running Triton: OIP requests forwarded to InvokeEndpoint.

Triton answers OIP v2 JSON at `/invocations`, so a request goes out as the client sent
it (inputs already checked against the registry signature) and the endpoint's outputs
come back as they are, with the version of the variant that answered. Throttling and 5xx
answers are retried by botocore's standard retry mode (4 attempts in all, exponential
backoff with jitter); what still fails maps onto maas's errors, a request Triton refuses
onto a 400 with Triton's own message.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from maas.errors import (
    ArtifactError,
    BackendUnavailable,
    InferenceError,
    InvalidInput,
    MaasError,
    ModelNotReady,
)
from maas.protocol import json_tensors, tensor_from_json
from maas.runtimes.base import Runtime, Signature
from maas.runtimes.budget import NO_LIMITS, Limits
from maas.runtimes.sagemaker_names import version_of_variant

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import numpy as np

# SageMaker real-time endpoints answer within 60 s or not at all.
READ_TIMEOUT_SECONDS = 65
_RETRIED_CODES = {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "InternalServerError"}


def runtime_client(max_attempts: int = 4) -> Any:
    import boto3

    return boto3.client(
        "sagemaker-runtime",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            read_timeout=READ_TIMEOUT_SECONDS,
            connect_timeout=5,
        ),
    )


class SageMakerRuntime(Runtime):
    """One registered version, served by variant `v<version>` of its model's endpoint."""

    platform = "onnxruntime_onnx"

    def __init__(self, *, endpoint: str, variant: str, signature: Signature, client: Any) -> None:
        self.endpoint = endpoint
        self.variant = variant
        self.signature = signature
        self._client = client

    @classmethod
    def load(cls, path: Path, limits: Limits = NO_LIMITS) -> SageMakerRuntime:
        raise ArtifactError(
            f"'{path.name}' belongs to a SageMaker endpoint; it is not loaded in this process"
        )

    def warm(self) -> None:
        """Nothing to warm here: the endpoint keeps its own model loaded."""

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.predict_served(inputs)[0]

    def predict_served(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str | None]:
        """The outputs, and the version of the variant that answered (SageMaker's
        InvokedProductionVariant), which mid-update need not be the one targeted."""
        body = {"inputs": json_tensors(inputs)}
        try:
            answer = self._client.invoke_endpoint(
                EndpointName=self.endpoint,
                TargetVariant=self.variant,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps(body),
            )
            payload = json.loads(answer["Body"].read())
        except ClientError as error:
            raise self._mapped(error) from None
        except BotoCoreError as error:  # connection refused, timeouts
            raise BackendUnavailable(
                f"SageMaker endpoint '{self.endpoint}' did not answer: {error}"
            ) from None
        except ValueError as error:
            raise InferenceError(
                f"SageMaker endpoint '{self.endpoint}' answered with invalid JSON: {error}"
            ) from None
        answered = version_of_variant(answer.get("InvokedProductionVariant") or "")
        return self._outputs(payload), None if answered is None else str(answered)

    def _outputs(self, payload: Any) -> dict[str, np.ndarray]:
        answered = {item.get("name"): item for item in payload.get("outputs", []) if isinstance(item, dict)}
        outputs = {}
        for spec in self.signature.outputs:
            if spec.name not in answered:
                raise InferenceError(
                    f"SageMaker endpoint '{self.endpoint}' answered without output '{spec.name}'"
                )
            try:
                outputs[spec.name] = tensor_from_json(answered[spec.name])
            except (ValidationError, MaasError) as error:
                raise InferenceError(
                    f"SageMaker endpoint '{self.endpoint}' sent an output '{spec.name}' that is not OIP: {error}"
                ) from None
        return outputs

    def _mapped(self, error: ClientError) -> MaasError:
        details = error.response.get("Error", {})
        code = details.get("Code", "")
        message = details.get("Message", str(error))
        attempts = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
        where = f"SageMaker endpoint '{self.endpoint}'"
        if code in _RETRIED_CODES:
            return BackendUnavailable(
                f"{where} is busy ({code}, {attempts} attempts with backoff); retry later"
            )
        if code == "ModelError":
            status = int(error.response.get("OriginalStatusCode", 0) or 0)
            original = _triton_message(error.response.get("OriginalMessage") or message)
            if 400 <= status < 500:
                return InvalidInput(f"{where} refused the request: {original}")
            return InferenceError(f"{where} failed: {original}")
        if code == "ValidationError":
            return ModelNotReady(
                f"{where} cannot serve variant '{self.variant}': {message} "
                "(promote the version with `maas models promote` to deploy it)"
            )
        return InferenceError(f"{where} failed: {code}: {message}")


def _triton_message(original: str) -> str:
    """Triton's own words: its error bodies are OIP `{"error": "..."}`, passed on as text by SageMaker."""
    try:
        parsed = json.loads(original)
    except ValueError:
        return original
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, str) and error else original
