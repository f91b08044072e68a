"""The demo models `maas dev` serves, made from code on first start: nothing is downloaded.

- `digits`: an int8-quantized ONNX classifier of scikit-learn's 8x8 digits, trained here;
- `digits-tflite`: the same task as an int8 TFLite model, shipped as a tiny file made by
  `examples/digits/make_tflite.py` (TensorFlow is too large to need at run time).

Both take the raw 0-16 pixel values as FP32 `input` [-1, 64] and return FP32
`probabilities` [-1, 10] and the INT64 `label`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from maas.errors import ConfigError

logger = logging.getLogger(__name__)

DIGITS = "digits"
DIGITS_TFLITE = "digits-tflite"
INPUT_NAME = "input"
# Fixed seeds and split: the model, and its accuracy, are the same on every machine.
SEED = 0


def ensure_demo_models(root: Path) -> list[str]:
    """Make the demo models under `root` (as `<name>/1/model.*`) unless they are there; returns their names."""
    onnx_path = root / DIGITS / "1" / "model.onnx"
    if not onnx_path.is_file():
        logger.info("training the %s demo model (first start only)", DIGITS)
        build_digits_onnx(onnx_path)
    tflite_path = root / DIGITS_TFLITE / "1" / "model.tflite"
    if not tflite_path.is_file():
        tflite_path.parent.mkdir(parents=True, exist_ok=True)
        source = resources.files("maas.local") / "assets" / "digits-int8.tflite"
        with resources.as_file(source) as shipped:
            shutil.copyfile(shipped, tflite_path)
    return [DIGITS, DIGITS_TFLITE]


def digits_split() -> tuple[Any, Any, Any, Any]:
    """The train/test split every digits model here is trained and scored on."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as error:
        raise ConfigError("the demo model needs scikit-learn: pip install 'maas[demo]'") from error
    features, labels = load_digits(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(
        features.astype("float32"), labels, test_size=0.25, random_state=SEED, stratify=labels
    )
    return train_x, test_x, train_y, test_y


def build_digits_onnx(path: Path, *, quantize: bool = True) -> float:
    """Train the digits classifier, convert it to ONNX, quantize its weights to int8, and
    write it to `path` atomically. Returns its accuracy on the held-out rows."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from skl2onnx import to_onnx
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as error:
        raise ConfigError(f"the demo model needs {error.name}: pip install 'maas[demo,onnx]'") from error

    train_x, test_x, train_y, test_y = digits_split()
    # Scaling lives inside the model so that clients send the raw 0-16 pixel values.
    classifier = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=SEED),
    )
    classifier.fit(train_x, train_y)
    onnx_model = to_onnx(
        classifier,
        initial_types=[(INPUT_NAME, _float_tensor_type()([None, 64]))],
        options={"zipmap": False},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        float_path = Path(scratch) / "float.onnx"
        float_path.write_bytes(onnx_model.SerializeToString())
        staged = Path(scratch) / "model.onnx"
        if quantize:
            from maas.optimize.quantize import quiet_quantizer

            with quiet_quantizer():
                quantize_dynamic(float_path, staged, weight_type=QuantType.QInt8)
        else:
            float_path.replace(staged)
        session = ort.InferenceSession(str(staged), providers=["CPUExecutionProvider"])
        labels = session.run(["label"], {INPUT_NAME: test_x})[0]
        accuracy = float((labels == test_y).mean())
        staged.replace(path)
    logger.info("wrote %s (accuracy %.3f on %d held-out digits)", path, accuracy, len(test_y))
    return accuracy


def build_large_digits_onnx(path: Path, *, verbose: bool = False) -> None:
    """The demo task at SageMaker scale: 4 hidden layers of width 1,024 (about 3.2 M weights,
    13 MB in FP32), the example's `digits-large`. Trained from code; same split as digits.
    `verbose` prints each training epoch's loss as it ends (30 of them, some seconds each)."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_x, _, train_y, _ = digits_split()
    model = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(1024,) * 4, max_iter=30, random_state=SEED, verbose=verbose),
    ).fit(train_x, train_y)
    onnx_model = to_onnx(
        model,
        initial_types=[(INPUT_NAME, _float_tensor_type()([None, 64]))],
        options={"zipmap": False},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onnx_model.SerializeToString())


def _float_tensor_type() -> type:
    from skl2onnx.common.data_types import FloatTensorType

    return FloatTensorType  # type: ignore[no-any-return]
