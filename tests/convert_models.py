"""Trained models of every framework `maas convert` takes, built from code (nothing is
downloaded), small enough to train in a second, shared by the functional and e2e tests.

Keras models are built in a child process (`python -m tests.convert_models keras DIR`):
TensorFlow must never be loaded in the test process, where it would break tflite-runtime.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEED = 0
COLORS = ("red", "green", "blue")


@dataclass(frozen=True)
class Built:
    source: Path  # what maas convert reads
    sample: Path  # .npz rows, one array per input
    expected: dict[str, np.ndarray]  # the framework's own answers to the sample rows


def categorical_pipeline(root: Path) -> Built:
    """A scikit-learn pipeline over a string column (one-hot) and two numbers (scaled), pickled."""
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    generator = np.random.default_rng(SEED)
    rows = 200
    color = generator.choice(COLORS, rows)
    size = generator.normal(size=rows).astype(np.float32)
    weight = generator.normal(size=rows).astype(np.float32)
    labels = ((color == "red") ^ (size > 0)).astype(np.int64) + (weight > 1)
    features = np.empty((rows, 3), dtype=object)
    features[:, 0], features[:, 1], features[:, 2] = color, size, weight
    pipeline = make_pipeline(
        ColumnTransformer(
            [("color", OneHotEncoder(handle_unknown="ignore"), [0]), ("numbers", StandardScaler(), [1, 2])]
        ),
        LogisticRegression(max_iter=500),
    ).fit(features, labels)
    joblib.dump(pipeline, root / "pipeline.joblib")
    np.savez(root / "pipeline-sample.npz", color=color[:, None], size=size[:, None], weight=weight[:, None])
    expected = {"label": pipeline.predict(features), "probabilities": pipeline.predict_proba(features)}
    return Built(root / "pipeline.joblib", root / "pipeline-sample.npz", expected)


def cancer_rows() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    features, labels = load_breast_cancer(return_X_y=True)
    return features.astype(np.float32), labels


def xgboost_classifier(root: Path) -> Built:
    """An XGBoost classifier of the breast-cancer data, saved in XGBoost's JSON."""
    import xgboost

    features, labels = cancer_rows()
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=SEED).fit(features, labels)
    model.save_model(root / "xgboost.json")
    np.savez(root / "cancer-sample.npz", input=features[:100])
    expected = {"label": model.predict(features[:100]), "probabilities": model.predict_proba(features[:100])}
    return Built(root / "xgboost.json", root / "cancer-sample.npz", expected)


def lightgbm_classifier(root: Path) -> Built:
    """A LightGBM classifier of the breast-cancer data, saved in LightGBM's text format."""
    import lightgbm

    features, labels = cancer_rows()
    model = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, random_state=SEED, verbose=-1)
    model.fit(features, labels)
    model.booster_.save_model(root / "lightgbm.txt")
    np.savez(root / "cancer-sample.npz", input=features[:100])
    expected = {"label": model.predict(features[:100]), "probabilities": model.predict_proba(features[:100])}
    return Built(root / "lightgbm.txt", root / "cancer-sample.npz", expected)


def torch_mlp(root: Path) -> Built:
    """A PyTorch MLP of the digits (random weights: conversion, not accuracy, is tested),
    exported with a dynamic batch and saved by torch.export."""
    import torch

    from maas.local.demo import digits_split

    torch.manual_seed(SEED)
    module = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10), torch.nn.Softmax(dim=1)
    ).eval()
    example = (torch.zeros(4, 64),)
    program = torch.export.export(module, example, dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, root / "mlp.pt2")
    rows = digits_split()[1][:50] / 16
    np.savez(root / "digits-sample.npz", input=rows)
    with torch.no_grad():
        expected = {"output": module(torch.from_numpy(rows)).numpy()}
    return Built(root / "mlp.pt2", root / "digits-sample.npz", expected)


def keras_classifier(root: Path) -> Built:
    """A Keras MLP of the digits, trained and saved as .keras in a child process, with
    calibration rows and its own answers to the sample rows."""
    subprocess.run(
        [sys.executable, "-m", "tests.convert_models", "keras", str(root)], check=True, timeout=300
    )
    with np.load(root / "keras-expected.npz") as answers:
        expected = {name: answers[name] for name in answers.files}
    return Built(root / "digits.keras", root / "keras-sample.npz", expected)


def _build_keras(root: Path) -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from maas.local.demo import digits_split

    keras.utils.set_random_seed(SEED)
    train_x, test_x, train_y, _ = digits_split()
    model = keras.Sequential(
        [
            keras.Input((64,), name="pixels"),
            keras.layers.Rescaling(1 / 16),  # clients send raw 0-16 pixels
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(train_x, train_y, epochs=10, batch_size=32, verbose=0)
    model.save(root / "digits.keras")
    model.export(root / "digits-savedmodel", verbose=False)  # the same model as a TensorFlow SavedModel
    np.savez(root / "keras-sample.npz", pixels=test_x[:100])
    np.savez(root / "keras-calibration.npz", pixels=train_x[:200])
    np.savez(root / "keras-expected.npz", output_0=model.predict(test_x[:100], verbose=0))


if __name__ == "__main__":
    if sys.argv[1] == "keras":
        _build_keras(Path(sys.argv[2]))
