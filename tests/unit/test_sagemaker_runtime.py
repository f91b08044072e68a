"""What a SageMaker-served version does when called as any other runtime: `predict` answers the
endpoint's outputs (callers that need not know which variant answered), and it is never loaded
from a file in this process."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maas.errors import ArtifactError
from maas.protocol import Datatype
from maas.runtimes.base import Signature, TensorSpec
from maas.runtimes.sagemaker import SageMakerRuntime

SIGNATURE = Signature(
    inputs=(TensorSpec("a", Datatype.FP32, (-1, 3)),), outputs=(TensorSpec("sum", Datatype.FP32, (-1, 3)),)
)


class Endpoint:
    """InvokeEndpoint of a Triton endpoint that doubles `a`, answering from variant v2."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.sent.append(request)
        (tensor,) = json.loads(request["Body"])["inputs"]
        doubled = [2 * value for value in tensor["data"]]
        answer = {"outputs": [{"name": "sum", "datatype": "FP32", "shape": tensor["shape"], "data": doubled}]}
        return {"Body": io.BytesIO(json.dumps(answer).encode()), "InvokedProductionVariant": "v2"}


def test_predict_answers_the_outputs_of_the_variant_it_targets() -> None:
    endpoint = Endpoint()
    runtime = SageMakerRuntime(endpoint="maas-large", variant="v2", signature=SIGNATURE, client=endpoint)
    outputs = runtime.predict({"a": np.array([[1.0, 2.0, 3.0]], dtype=np.float32)})
    assert list(outputs) == ["sum"]
    assert outputs["sum"].tolist() == [[2.0, 4.0, 6.0]]
    assert (endpoint.sent[0]["EndpointName"], endpoint.sent[0]["TargetVariant"]) == ("maas-large", "v2")


def test_a_sagemaker_version_is_never_loaded_from_a_file_here() -> None:
    with pytest.raises(
        ArtifactError, match=r"^'model\.onnx' belongs to a SageMaker endpoint; it is not loaded"
    ):
        SageMakerRuntime.load(Path("/models/large/1/model.onnx"))
