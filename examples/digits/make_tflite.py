"""Make `maas/local/assets/digits-int8.tflite`, the `digits-tflite` demo model.

TensorFlow is far too large to need at run time, so this script runs once, by hand,
and its tiny output is committed. It trains a small Keras MLP on scikit-learn's 8x8
digits (same split as the ONNX demo), then converts it with full int8 quantization:
the model's input and probabilities are int8 with a scale and zero point, which the
maas TFLite runtime applies, so clients still send and receive real values.

    python3.11 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu scikit-learn
    /tmp/tfvenv/bin/python examples/digits/make_tflite.py

Input `input`: FP32 [-1, 64], raw 0-16 pixel values. Outputs `probabilities`: [-1, 10],
`label`: INT64 [-1].
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

OUTPUT = Path(__file__).resolve().parents[2] / "maas" / "local" / "assets" / "digits-int8.tflite"
SEED = 0


def main() -> None:
    tf.keras.utils.set_random_seed(SEED)
    features, labels = load_digits(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(
        features.astype("float32"), labels, test_size=0.25, random_state=SEED, stratify=labels
    )
    network = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(64,)),
            tf.keras.layers.Rescaling(1 / 16),  # clients send raw 0-16 pixels
            tf.keras.layers.Dense(32, activation="relu"),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    network.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    network.fit(train_x, train_y, epochs=60, batch_size=32, verbose=0)
    print(f"keras accuracy: {network.evaluate(test_x, test_y, verbose=0)[1]:.3f}")

    # The trained weights become constants of a plain function: the converter needs no
    # variables, and the signature gets exactly the names clients use.
    hidden_w, hidden_b, out_w, out_b = (tf.constant(weights) for weights in network.get_weights())

    @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32, name="input")])
    def serve(input: tf.Tensor) -> dict[str, tf.Tensor]:
        hidden = tf.nn.relu(tf.matmul(input / 16.0, hidden_w) + hidden_b)
        probabilities = tf.nn.softmax(tf.matmul(hidden, out_w) + out_b)
        return {"probabilities": probabilities, "label": tf.argmax(probabilities, axis=1)}

    # Through a SavedModel so that the .tflite keeps a `serving_default` signature with
    # these tensor names (a bare concrete function loses them).
    with tempfile.TemporaryDirectory() as saved_model:
        tf.saved_model.save(tf.Module(), saved_model, signatures={"serving_default": serve})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([row[None, :]] for row in train_x[:300])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        flatbuffer = converter.convert()
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_bytes(flatbuffer)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")
    print(f"tflite int8 accuracy: {tflite_accuracy(OUTPUT, test_x, test_y):.3f}")


def tflite_accuracy(path: Path, features: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the file on `features` run as one batch, quantizing as maas's runtime does."""
    interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    detail = runner.get_input_details()["input"]
    scale, zero_point = detail["quantization"]
    quantized = np.clip(np.round(features / scale) + zero_point, -128, 127).astype(np.int8)
    return float((runner(input=quantized)["label"] == labels).mean())


if __name__ == "__main__":
    main()
