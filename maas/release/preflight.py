"""What `maas release` checks before it changes anything: that the evaluation file fits the
artifact's signature (and prod's, since the gate sends both the same requests), and how many
rows each request carries.

A model whose first dimension is fixed ([8, 64]) takes exactly that many rows per request:
the evaluation is sent in requests of that size, the last one padded by repeating its final
row, and the padding's outputs are dropped before scoring.
"""

from __future__ import annotations

import dataclasses
import zipfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from maas.errors import ArtifactError, InvalidInput, MaasError
from maas.optimize.evaluation import LABELS, TARGETS, load_evaluation
from maas.protocol.codec import decode_values
from maas.protocol.datatypes import NUMPY_DTYPES, Datatype, parse_datatype
from maas.release.gate import rows
from maas.runtimes import Signature, TensorSpec, framework_of, load_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from maas.optimize.evaluation import EvaluationSet


@dataclass(frozen=True)
class FittedEvaluation:
    evaluation: EvaluationSet  # the inputs cast to the models' datatypes, in their order
    rows_per_request: int
    exact: bool  # every request must hold exactly rows_per_request rows (a fixed first dimension)

    def describe(self) -> str:
        why = "the model's fixed first dimension" if self.exact else "release.batch_rows"
        return f"rows per request: {self.rows_per_request} ({why})"


def read_evaluation(path: Path) -> EvaluationSet:
    """The evaluation file at `path`; raises InvalidInput naming it unless it is a readable .npz."""
    # np.load hands back a bare array for a .npy and raises zipfile's errors for a damaged .npz
    if path.is_file() and not zipfile.is_zipfile(path):
        raise InvalidInput(f"evaluation file {path} is not a NumPy .npz archive (np.savez writes one)")
    try:
        return load_evaluation(path)
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError) as error:
        raise InvalidInput(f"evaluation file {path} is a damaged .npz archive: {error}") from None


def artifact_signature(artifact: Path) -> Signature:
    """The signature of the model file, as registering it would record; raises InvalidInput."""
    try:
        return load_runtime(artifact, framework_of(artifact)).signature
    except ArtifactError as error:
        raise InvalidInput(f"cannot release '{artifact.name}': {error.message}") from None


def check_api_serves_registry(
    model: str, api_url: str, latest_version: int, api_versions: Any, prod: tuple[str, int, Any] | None
) -> None:
    """Refuse an API that serves another registry's `model` (--api-url of another stack): every
    version it lists must be one this registry numbered, and the version it answers for prod
    (`prod`: alias, this registry's version, the API's metadata of the alias) must be this
    registry's. Raises InvalidInput."""
    try:
        listed = sorted(int(version) for version in api_versions)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"the API at {api_url} lists versions {api_versions!r} of '{model}', not numbers"
        ) from None
    unknown = [version for version in listed if not 1 <= version <= latest_version]
    if unknown:
        raise InvalidInput(
            f"the API at {api_url} serves versions {unknown} of '{model}', which this registry never "
            f"registered (its latest is {latest_version}): is --api-url another stack's API?"
        )
    if prod is not None:
        alias, version, metadata = prod
        answered = metadata.get("versions") if isinstance(metadata, dict) else None
        if answered != [str(version)]:
            raise InvalidInput(
                f"the API at {api_url} serves '{alias}' of '{model}' as version(s) {answered}, but this "
                f"registry's '{alias}' is version {version}: is --api-url another stack's API?"
            )


def signature_from_metadata(metadata: Any) -> Signature:
    """The inputs and outputs an OIP server reports in its model metadata."""
    try:
        return Signature(
            inputs=tuple(_spec(item) for item in metadata["inputs"]),
            outputs=tuple(_spec(item) for item in metadata.get("outputs", [])),
        )
    except (KeyError, TypeError, ValueError, MaasError) as error:
        raise InvalidInput(f"the API's model metadata is not OIP: {error}") from None


def fit_evaluation(
    evaluation: EvaluationSet, signatures: dict[str, Signature], batch_rows: int
) -> FittedEvaluation:
    """Check every input of `evaluation` against each of `signatures` (keyed by what to call
    the model in a message); raises InvalidInput naming the input and the mismatch."""
    total = rows(evaluation)
    answers = evaluation.labels if evaluation.labels is not None else evaluation.targets
    if total == 0:
        raise InvalidInput("the evaluation file holds no rows")
    if answers is not None and len(answers) != total:
        raise InvalidInput(
            f"the evaluation file has {total} rows of inputs and {len(answers)} of {evaluation.metric} answers"
        )
    _check_answers(evaluation)
    first, *_ = signatures.values()
    wanted = [spec.name for spec in first.inputs]
    missing = [name for name in wanted if name not in evaluation.inputs]
    if missing:
        raise InvalidInput(f"the evaluation file has no array for the model's input(s) {', '.join(missing)}")
    extra = sorted(set(evaluation.inputs) - set(wanted))
    if extra:
        raise InvalidInput(
            f"the evaluation file's array(s) {', '.join(extra)} are not inputs of the model "
            f"(its inputs: {', '.join(wanted)})"
        )
    inputs = {}
    for name in wanted:
        array = evaluation.inputs[name]
        for label, signature in signatures.items():
            spec = signature.input(name)
            if spec is None:
                raise InvalidInput(
                    f"{label} has no input '{name}': the gate sends both models the same requests"
                )
            array = _fitted(array, spec, label)
        for signature in signatures.values():
            _check_sendable(evaluation.inputs[name], signature.input(name))
        inputs[name] = array
    fixed = {
        spec.shape[0]
        for signature in signatures.values()
        for spec in signature.inputs
        if spec.shape and spec.shape[0] != -1
    }
    if len(fixed) > 1:
        raise InvalidInput(
            f"the models take fixed numbers of rows per request that differ ({sorted(fixed)}): "
            "the gate cannot send them the same requests"
        )
    fitted = dataclasses.replace(evaluation, inputs=inputs)
    if fixed:
        return FittedEvaluation(fitted, rows_per_request=fixed.pop(), exact=True)
    return FittedEvaluation(fitted, rows_per_request=batch_rows, exact=False)


def _fitted(array: np.ndarray, spec: TensorSpec, label: str) -> np.ndarray:
    """`array` (one row per evaluation row) as `spec` takes it, cast to its datatype."""
    if array.ndim == 0:
        raise InvalidInput(f"array '{spec.name}' of the evaluation file is a scalar, not rows")
    if not spec.shape:
        raise InvalidInput(f"{label} takes input '{spec.name}' as a scalar: it has no rows to evaluate")
    rows, model_rows = list(array.shape[1:]), list(spec.shape[1:])
    fits = len(rows) == len(model_rows) and all(
        want in (-1, got) for want, got in zip(model_rows, rows, strict=True)
    )
    if not fits:
        raise InvalidInput(
            f"input '{spec.name}' has rows of shape {rows} in the evaluation file, but {label} takes "
            f"{model_rows} (-1 is any size)"
        )
    if spec.datatype is Datatype.BYTES:
        return array
    dtype = NUMPY_DTYPES[spec.datatype]
    if not np.can_cast(array.dtype, dtype, casting="same_kind"):
        raise InvalidInput(
            f"input '{spec.name}' is {array.dtype} in the evaluation file, and {label} takes {spec.datatype}"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values: _check_sendable says
        return array.astype(dtype, copy=False)


def _check_answers(evaluation: EvaluationSet) -> None:
    """Labels no model output could equal (text, NaN, 2.5) or targets no RMSE can be taken of
    would score both versions alike and let the gate pass on latency alone."""
    if evaluation.labels is not None:
        labels = evaluation.labels
        if labels.dtype.kind in "iub":
            return
        if labels.dtype.kind != "f":
            raise InvalidInput(
                f"array '{LABELS}' of the evaluation file is {labels.dtype}: labels must be integer class ids"
            )
        if not np.isfinite(labels).all() or (labels != np.round(labels)).any():
            raise InvalidInput(
                f"array '{LABELS}' of the evaluation file holds values that are not integers "
                f"(NaN, infinite or fractional): labels must be integer class ids"
            )
        return
    assert evaluation.targets is not None
    targets = evaluation.targets
    if targets.dtype.kind not in "iuf":
        raise InvalidInput(
            f"array '{TARGETS}' of the evaluation file is {targets.dtype}: targets must be numbers"
        )
    if not np.isfinite(targets).all():
        raise InvalidInput(
            f"array '{TARGETS}' of the evaluation file holds NaN or infinite values: targets must be finite"
        )


def _check_sendable(array: np.ndarray, spec: TensorSpec | None) -> None:
    """Refuse what the API's codec would answer 400 to (NaN, infinities, values out of range):
    found before registering, not after staging moved."""
    if spec is None or spec.datatype is Datatype.BYTES:
        return
    try:
        decode_values(spec.name, array.ravel().tolist(), spec.datatype)
    except InvalidInput as error:
        raise InvalidInput(f"the evaluation file's {error.message}; the API would refuse it") from None


def _spec(item: Any) -> TensorSpec:
    return TensorSpec(
        name=item["name"], datatype=parse_datatype(item["datatype"]), shape=tuple(item["shape"])
    )
