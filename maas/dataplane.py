"""The transport-free data plane: every OIP operation, whatever carries the request.

The Lambda handler and any other adapter only translate requests and responses;
everything a model server decides (which model, whether the input fits it,
what goes back) is decided here.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from maas import __version__
from maas.errors import ArtifactError, InvalidInput, MaasError, ModelNotReady
from maas.protocol import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadataResponse,
    ModelReadyResponse,
    ServerLiveResponse,
    ServerMetadataResponse,
    ServerReadyResponse,
    TensorMetadata,
    decode_tensor,
    encode_tensor,
    input_buffers,
    output_as_binary,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from maas.runtimes import Runtime, Signature, TensorSpec
    from maas.sources import ModelRef, ModelSource

logger = logging.getLogger(__name__)

# The OIP extensions this server implements, as Triton reports them in server metadata.
EXTENSIONS = ["binary_tensor_data"]


@dataclass
class InferenceResult:
    """An infer response, plus the raw bytes of the outputs sent as binary data, in output order."""

    response: InferenceResponse
    binary: list[bytes] = field(default_factory=list)
    inference_ms: float = 0.0  # time inside the runtime alone


@dataclass
class _LoadFailure:
    error: ArtifactError
    at: float


class DataPlane:
    """Health, metadata and inference over the models of one `ModelSource`.

    Loaded runtimes are cached by the source's cache key; a model that fails to load
    answers 503 with the reason, and loading is retried after `retry_after` seconds.
    """

    def __init__(
        self,
        source: ModelSource,
        *,
        server_name: str = "maas",
        retry_after: float = 5.0,
        on_load: Callable[[ModelRef, float], None] | None = None,
    ) -> None:
        self.source = source
        self.on_load = on_load
        self.server_name = server_name
        self.retry_after = retry_after
        self._loaded: dict[str, Runtime | _LoadFailure] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def live(self) -> ServerLiveResponse:
        return ServerLiveResponse(live=True)

    def ready(self) -> ServerReadyResponse:
        return ServerReadyResponse(ready=self.source.ready())

    def server_metadata(self) -> ServerMetadataResponse:
        return ServerMetadataResponse(name=self.server_name, version=__version__, extensions=EXTENSIONS)

    def model_metadata(self, name: str, version: str | None = None) -> ModelMetadataResponse:
        """Name, versions, platform and tensors of a model. Raises ModelNotFound, ModelNotReady."""
        ref = self.source.resolve(name, version)
        runtime = self.runtime(ref)
        return ModelMetadataResponse(
            name=ref.name,
            versions=self.source.versions(name) if version is None else [ref.version],
            platform=runtime.platform,
            inputs=_tensor_metadata(runtime.signature.inputs),
            outputs=_tensor_metadata(runtime.signature.outputs),
        )

    def model_ready(self, name: str, version: str | None = None) -> ModelReadyResponse:
        """Ready once the model loads. Raises ModelNotFound, and ModelNotReady with the load error."""
        self.runtime(self.source.resolve(name, version))
        return ModelReadyResponse(name=name, ready=True)

    def infer(
        self, name: str, request: InferenceRequest, version: str | None = None, binary: bytes = b""
    ) -> InferenceResult:
        """Run `request` on the model; `binary` is the tail of a binary-extension body.

        Raises ModelNotFound, ModelNotReady, InvalidInput (naming the input and the
        problem), and InferenceError.
        """
        return self.infer_resolved(self.source.resolve(name, version), request, binary)

    def infer_resolved(
        self, ref: ModelRef, request: InferenceRequest, binary: bytes = b""
    ) -> InferenceResult:
        """`infer` on a version already resolved (a canary arm already drawn)."""
        runtime = self.runtime(ref)
        arrays = _checked_inputs(request, binary, runtime.signature)
        wanted = _requested_outputs(request, runtime.signature)
        started = time.perf_counter()
        outputs, answered_by = runtime.predict_served(arrays)
        inference_ms = (time.perf_counter() - started) * 1000
        response = InferenceResponse.model_construct(
            model_name=ref.name,
            model_version=answered_by or ref.version,
            id=request.id,
            parameters=None,
            outputs=[],
        )
        result = InferenceResult(response=response, inference_ms=inference_ms)
        for output_name in wanted:
            output, raw = encode_tensor(
                output_name, outputs[output_name], binary=output_as_binary(request, output_name)
            )
            response.outputs.append(output)
            if raw is not None:
                result.binary.append(raw)
        return result

    def preload(self, names: list[str]) -> None:
        """Load and warm `names` now (at cold start) so the first request pays for neither.

        A model that fails to load is logged and answers 503 later; it does not stop start-up.
        """
        for name in names:
            try:
                self.runtime(self.source.resolve(name)).warm()
            except MaasError as error:
                logger.error("could not preload model %s: %s", name, error.message)

    def runtime(self, ref: ModelRef) -> Runtime:
        """The loaded runtime of `ref`, loading it once; raises ModelNotReady if it fails to load."""
        cached = self._loaded.get(ref.cache_key)
        if self._needs_load(cached):
            # One loader per model; other threads wait for it rather than load again.
            with self._lock_for(ref.cache_key):
                cached = self._loaded.get(ref.cache_key)
                if self._needs_load(cached):
                    cached = self._load(ref)
                    self._loaded[ref.cache_key] = cached
        if isinstance(cached, _LoadFailure):
            raise ModelNotReady(
                f"model '{ref.name}' version '{ref.version}' is not ready: {cached.error.message}"
            )
        assert cached is not None  # _needs_load() is False only once something is cached
        return cached

    def _needs_load(self, cached: Runtime | _LoadFailure | None) -> bool:
        if cached is None:
            return True
        return isinstance(cached, _LoadFailure) and time.monotonic() - cached.at >= self.retry_after

    def _load(self, ref: ModelRef) -> Runtime | _LoadFailure:
        started = time.perf_counter()
        try:
            runtime = self.source.load(ref)
        except ArtifactError as error:
            logger.error("model %s version %s failed to load: %s", ref.name, ref.version, error.message)
            return _LoadFailure(error=error, at=time.monotonic())
        seconds = time.perf_counter() - started
        logger.info("loaded model %s version %s in %.1f ms", ref.name, ref.version, seconds * 1000)
        if self.on_load is not None:
            self.on_load(ref, seconds)
        return runtime

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())


def _tensor_metadata(specs: tuple[TensorSpec, ...]) -> list[TensorMetadata]:
    return [TensorMetadata(name=spec.name, datatype=spec.datatype, shape=list(spec.shape)) for spec in specs]


def _checked_inputs(request: InferenceRequest, binary: bytes, signature: Signature) -> dict[str, np.ndarray]:
    """Decode every input and check it against the model: names, datatypes, shapes."""
    arrays: dict[str, np.ndarray] = {}
    for tensor, raw in zip(request.inputs, input_buffers(request, binary), strict=True):
        spec = signature.input(tensor.name)
        if spec is None:
            expected = ", ".join(spec.name for spec in signature.inputs)
            raise InvalidInput(f"unknown input '{tensor.name}', the model's inputs are: {expected}")
        if tensor.name in arrays:
            raise InvalidInput(f"input '{tensor.name}' is given more than once")
        if tensor.datatype != spec.datatype:
            raise InvalidInput(
                f"input '{tensor.name}' has datatype {tensor.datatype} but the model expects {spec.datatype}"
            )
        if not spec.accepts_shape(tensor.shape):
            raise InvalidInput(
                f"input '{tensor.name}' has shape {tensor.shape} but the model expects {list(spec.shape)} "
                "(-1 is any size)"
            )
        arrays[tensor.name] = decode_tensor(tensor, raw)
    missing = [spec.name for spec in signature.inputs if spec.name not in arrays]
    if missing:
        raise InvalidInput(f"missing input(s): {', '.join(missing)}")
    return arrays


def _requested_outputs(request: InferenceRequest, signature: Signature) -> list[str]:
    if not request.outputs:
        return [spec.name for spec in signature.outputs]
    for output in request.outputs:
        if signature.output(output.name) is None:
            expected = ", ".join(spec.name for spec in signature.outputs)
            raise InvalidInput(f"unknown output '{output.name}', the model's outputs are: {expected}")
    return [output.name for output in request.outputs]


__all__ = ["EXTENSIONS", "DataPlane", "InferenceResult"]
