"""Which framework a source is, from its saved form, and loading it (refusing pickles unless
trusted: unpickling runs whatever code the file's author put in it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from maas.convert.exceptions import UnsupportedSource, UntrustedPickle

if TYPE_CHECKING:
    from collections.abc import Callable

    from maas.convert.source import SourceModel

PICKLES = (".pkl", ".pickle", ".joblib")
# torch.save's files are pickles of Python objects (whole modules, or state dicts without the code).
TORCH_PICKLES = (".pt", ".pth")
KNOWN = ".keras, a SavedModel directory, .pt2, .json/.ubj (XGBoost), .txt (LightGBM), .pkl/.joblib (--trust-pickle), or package.module:factory"


def open_source(source: str | Path, *, trust_pickle: bool = False) -> SourceModel:
    """The model at `source` (a file, a SavedModel directory, or `package.module:factory`),
    loaded by its framework. Raises UntrustedPickle for a pickle without `trust_pickle`, and
    UnsupportedSource for anything else maas cannot convert."""
    path = Path(source)
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise UnsupportedSource(
                f"'{path}' is a directory but no TensorFlow SavedModel (no saved_model.pb)"
            )
        from maas.convert.tensorflow_models import SavedModelSource

        return SavedModelSource(path)
    if not path.exists():
        text = str(source)
        if ":" in text and not text.startswith((".", "/")) and "." not in text.partition(":")[2]:
            from maas.convert.pytorch import TorchSource

            return TorchSource.from_factory(text)
        raise UnsupportedSource(f"no model at '{source}' (expected {KNOWN})")
    suffix = path.suffix.lower()
    if suffix in PICKLES:
        if not trust_pickle:
            raise UntrustedPickle(
                f"'{path.name}' is a {suffix} file: loading a pickle runs any code its author put in it, so maas "
                "loads one only when you pass --trust-pickle (do so only for files you made yourself or trust). "
                "Nothing was loaded"
            )
        return _from_pickle(path)
    if suffix in TORCH_PICKLES:
        raise UnsupportedSource(
            f"'{path.name}' is a torch.save pickle: save the module with torch.export.save(torch.export.export("
            "module, example), 'model.pt2') and convert the .pt2, or give package.module:factory"
        )
    loader = _NATIVE.get(suffix)
    if loader is None:
        raise UnsupportedSource(f"maas cannot convert '{path.name}' (expected {KNOWN})")
    return loader(path)


def _keras(path: Path) -> SourceModel:
    from maas.convert.tensorflow_models import KerasSource

    return KerasSource.from_file(path)


def _exported_program(path: Path) -> SourceModel:
    from maas.convert.pytorch import TorchSource

    return TorchSource.from_exported(path)


def _xgboost(path: Path) -> SourceModel:
    from maas.convert.boosters import XGBoostSource

    return XGBoostSource.from_file(path)


def _lightgbm(path: Path) -> SourceModel:
    from maas.convert.boosters import LightGBMSource

    return LightGBMSource.from_file(path)


# Each framework's own saved form (no pickled code), by suffix.
_NATIVE: dict[str, Callable[[Path], SourceModel]] = {
    ".keras": _keras,
    ".pt2": _exported_program,
    ".json": _xgboost,
    ".ubj": _xgboost,
    ".txt": _lightgbm,
}


def _from_pickle(path: Path) -> SourceModel:
    import joblib

    try:
        model = joblib.load(path)
    except Exception as error:  # whatever the file's code raised
        raise UnsupportedSource(f"cannot unpickle '{path.name}': {error}") from None
    kind = type(model)
    module = kind.__module__.split(".")[0]
    if module == "xgboost" and hasattr(model, "get_booster"):
        from maas.convert.boosters import XGBoostSource

        return XGBoostSource(path.name, model)
    if module == "lightgbm":
        from maas.convert.boosters import LightGBMSource

        return LightGBMSource(path.name, model)
    if module == "sklearn" or (hasattr(model, "fit") and hasattr(model, "get_params")):
        from maas.convert.scikit import ScikitSource

        return ScikitSource(path.name, model)
    raise UnsupportedSource(
        f"'{path.name}' holds a {kind.__module__}.{kind.__name__}, not a scikit-learn, XGBoost or LightGBM model"
    )
