"""The transport-free data plane: every OIP operation, whatever carries the request.

The Lambda handler and any other adapter only translate requests and responses;
everything a model server decides (which model, whether the input fits it,
what goes back) is decided here.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from maas import __version__
from maas.cache import LruBudget
from maas.errors import (
    ArtifactError,
    BudgetExceeded,
    DeadlineExceeded,
    InvalidInput,
    MaasError,
    ModelNotReady,
)
from maas.protocol.binary import input_buffers, output_as_binary
from maas.protocol.codec import decode_tensor, encode_tensor
from maas.protocol.triton_types import TRITON_TYPES, ModelState
from maas.protocol.wire import (
    InferenceResponse,
    ModelConfigResponse,
    ModelConfigTensor,
    ModelMetadataResponse,
    ModelReadyResponse,
    ModelStatisticsResponse,
    RepositoryIndexEntry,
    RepositoryIndexResponse,
    ServerLiveResponse,
    ServerMetadataResponse,
    ServerReadyResponse,
    TensorMetadata,
)
from maas.runtimes.budget import MB, NO_LIMITS, Limits, loading_with
from maas.statistics import InferenceStatistics, Stopwatch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy as np

    from maas.names import ModelRef
    from maas.protocol.wire import Request
    from maas.runtimes import Runtime, Signature, TensorSpec
    from maas.sources import ModelSource

logger = logging.getLogger(__name__)

# The OIP extensions this server implements, as Triton reports them in server metadata. Not
# "model_repository": of it, only the index is served (no load or unload), and only by `maas dev`.
EXTENSIONS = ["binary_tensor_data", "statistics", "model_configuration"]
# The Triton backend that runs each framework's models, for the model configuration.
BACKENDS = {"onnx": "onnxruntime", "tflite": "tflite"}


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
    """Health, metadata, inference and its statistics over the models of one `ModelSource`.

    Loaded runtimes are cached by the source's cache key, the least recently used evicted
    while their models pass `cache_bytes` (never one serving a request); a model that fails
    to load answers 503 with the reason, and loading is retried after `retry_after` seconds.
    Each prediction runs within `limits`, and a response carries at most `max_response_bytes`.
    """

    def __init__(
        self,
        source: ModelSource,
        *,
        server_name: str = "maas",
        retry_after: float = 5.0,
        on_load: Callable[[ModelRef, float], None] | None = None,
        limits: Limits = NO_LIMITS,
        cache_bytes: int | None = None,
        max_response_bytes: int | None = None,
    ) -> None:
        self.source = source
        self.on_load = on_load
        self.server_name = server_name
        self.retry_after = retry_after
        self.limits = limits
        self.max_response_bytes = max_response_bytes
        self._loaded: LruBudget[Runtime] = LruBudget(cache_bytes)
        self._failures: dict[str, _LoadFailure] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.statistics = InferenceStatistics()

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
        self, name: str, request: Request, version: str | None = None, binary: bytes = b""
    ) -> InferenceResult:
        """Run `request` on the model; `binary` is the tail of a binary-extension body.

        Raises ModelNotFound, ModelNotReady, InvalidInput (naming the input and the
        problem), and InferenceError.
        """
        return self.infer_resolved(self.source.resolve(name, version), request, binary)

    def infer_resolved(self, ref: ModelRef, request: Request, binary: bytes = b"") -> InferenceResult:
        """`infer` on a version already resolved (a canary arm already drawn); counted in
        `statistics` under the version that answered, a failure under `ref`'s version."""
        watch = Stopwatch()
        try:
            result = self._infer(ref, request, binary, watch)
        except Exception:
            self.statistics.failed(ref.name, ref.version, watch.elapsed_ns())
            raise
        self.statistics.succeeded(ref.name, result.response.model_version or ref.version, watch)
        return result

    def _infer(self, ref: ModelRef, request: Request, binary: bytes, watch: Stopwatch) -> InferenceResult:
        with self.serving(ref) as runtime:
            watch.lap("queue")  # waiting for the model, and loading it if it was not loaded
            arrays = _checked_inputs(request, binary, runtime.signature)
            wanted = _requested_outputs(request, runtime.signature)
            watch.lap("compute_input")
            try:
                outputs, answered_by = runtime.predict_served(arrays)
            except (BudgetExceeded, DeadlineExceeded) as error:
                raise type(error)(f"model '{ref.name}' version '{ref.version}' {error.message}") from None
            inference_ms = watch.lap("compute_infer") / 1e6
            least = _least_response_bytes(request, outputs, wanted)
            if self.max_response_bytes is not None and least > self.max_response_bytes:
                # Dropped before raising: the traceback would keep the arrays, and their memory.
                del outputs
                runtime.release()
                raise BudgetExceeded(
                    f"model '{ref.name}' version '{ref.version}' answered with outputs of at least "
                    f"{least / MB:.1f} MB, more than the {self.max_response_bytes / MB:g} MB a response "
                    "may carry (MAAS_MAX_RESPONSE_MB)"
                )
            response = InferenceResponse(
                model_name=ref.name, model_version=answered_by or ref.version, id=request.id, outputs=[]
            )
            result = InferenceResult(response=response, inference_ms=inference_ms)
            for output_name in wanted:
                output, raw = encode_tensor(
                    output_name, outputs[output_name], binary=output_as_binary(request, output_name)
                )
                response.outputs.append(output)
                if raw is not None:
                    result.binary.append(raw)
            del outputs  # the response holds copies: the runtime may give the arrays' memory back
            runtime.release()
            watch.lap("compute_output")
        return result

    def model_statistics(self, name: str, version: str | None = None) -> ModelStatisticsResponse:
        """What this process served of `name`: every servable version, or the one `version`
        resolves to (a number or an alias). Raises ModelNotFound."""
        versions = (
            self.source.versions(name) if version is None else [self.source.resolve(name, version).version]
        )
        return ModelStatisticsResponse(model_stats=[self.statistics.of(name, v) for v in versions])

    def model_config(self, name: str, version: str | None = None) -> ModelConfigResponse:
        """The model as a Triton model configuration: no batching (max_batch_size 0), so `dims`
        are the full shapes, -1 for a dynamic dimension. Raises ModelNotFound, ModelNotReady."""
        ref = self.source.resolve(name, version)
        runtime = self.runtime(ref)
        return ModelConfigResponse(
            name=ref.name,
            platform=runtime.platform,
            backend=BACKENDS.get(ref.framework, ref.framework),
            max_batch_size=0,
            input=_config_tensors(runtime.signature.inputs),
            output=_config_tensors(runtime.signature.outputs),
        )

    def repository_index(self, *, ready_only: bool = False) -> RepositoryIndexResponse:
        """Every model of the source, READY with the version its default serves once that loads,
        else UNAVAILABLE with the reason; `ready_only` leaves out the unavailable ones. Loads each
        model not loaded yet, as a readiness check would."""
        entries = [self._index_entry(name) for name in self.source.models()]
        if ready_only:
            entries = [entry for entry in entries if entry.state is ModelState.READY]
        return RepositoryIndexResponse(root=entries)

    def _index_entry(self, name: str) -> RepositoryIndexEntry:
        version = None
        try:
            ref = self.source.resolve(name)
            version = ref.version
            self.runtime(ref)
        except MaasError as error:
            return RepositoryIndexEntry(
                name=name, version=version, state=ModelState.UNAVAILABLE, reason=error.message
            )
        return RepositoryIndexEntry(name=name, version=version, state=ModelState.READY, reason="")

    def preload(self, names: list[str]) -> None:
        """Load and warm `names` now (at cold start) so the first request pays for neither.

        A model that fails to load is logged and answers 503 later; it does not stop start-up.
        """
        for name in names:
            try:
                with self.serving(self.source.resolve(name)) as runtime:
                    runtime.warm()
            except MaasError as error:
                logger.error("could not preload model %s: %s", name, error.message)

    def runtime(self, ref: ModelRef) -> Runtime:
        """The loaded runtime of `ref`, loading it once; raises ModelNotReady if it fails to load.

        The cache may evict it once this returns: to keep it while it serves, use `serving`.
        """
        with self.serving(ref) as runtime:
            return runtime

    @contextmanager
    def serving(self, ref: ModelRef) -> Iterator[Runtime]:
        """The loaded runtime of `ref` (loaded once), which the cache keeps until the block ends.
        Raises ModelNotReady if it fails to load."""
        runtime = self._loaded.checkout(ref.cache_key)
        if runtime is None:
            runtime = self._load_pinned(ref)
        try:
            yield runtime
        finally:
            self._loaded.checkin(ref.cache_key)

    def _load_pinned(self, ref: ModelRef) -> Runtime:
        # One loader per model; other threads wait for it rather than load again.
        with self._lock_for(ref.cache_key):
            runtime = self._loaded.checkout(ref.cache_key)
            if runtime is not None:
                return runtime
            failure = self._failures.get(ref.cache_key)
            if failure is None or time.monotonic() - failure.at >= self.retry_after:
                loaded = self._load(ref)
                if not isinstance(loaded, _LoadFailure):
                    self._failures.pop(ref.cache_key, None)
                    label = f"model {ref.name} version {ref.version}"
                    self._loaded.add(ref.cache_key, loaded, loaded.memory_bytes, label=label, pinned=True)
                    return loaded
                self._failures[ref.cache_key] = failure = loaded
        raise ModelNotReady(
            f"model '{ref.name}' version '{ref.version}' is not ready: {failure.error.message}"
        )

    def _load(self, ref: ModelRef) -> Runtime | _LoadFailure:
        started = time.perf_counter()
        try:
            with loading_with(self.limits):
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


def _config_tensors(specs: tuple[TensorSpec, ...]) -> list[ModelConfigTensor]:
    return [
        ModelConfigTensor(name=spec.name, data_type=TRITON_TYPES[spec.datatype], dims=list(spec.shape))
        for spec in specs
    ]


def _tensor_metadata(specs: tuple[TensorSpec, ...]) -> list[TensorMetadata]:
    return [TensorMetadata(name=spec.name, datatype=spec.datatype, shape=list(spec.shape)) for spec in specs]


def _checked_inputs(request: Request, binary: bytes, signature: Signature) -> dict[str, np.ndarray]:
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


def _least_response_bytes(request: Request, outputs: dict[str, np.ndarray], wanted: list[str]) -> int:
    """The fewest bytes the outputs can take in a response (each element's raw bytes as binary
    data, "0," in JSON), known before encoding them: JSON makes a Python object of each element."""
    return sum(
        outputs[name].nbytes if output_as_binary(request, name) else 2 * outputs[name].size for name in wanted
    )


def _requested_outputs(request: Request, signature: Signature) -> list[str]:
    if not request.outputs:
        return [spec.name for spec in signature.outputs]
    for output in request.outputs:
        if signature.output(output.name) is None:
            expected = ", ".join(spec.name for spec in signature.outputs)
            raise InvalidInput(f"unknown output '{output.name}', the model's outputs are: {expected}")
    return [output.name for output in request.outputs]


__all__ = ["EXTENSIONS", "DataPlane", "InferenceResult"]
