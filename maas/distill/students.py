"""The students `maas distill` trains on a teacher's answers, each written as ONNX with the
teacher's input and output names, datatypes and a dynamic batch, so it can stand in for it.

- `mlp`: a PyTorch MLP of the chosen widths (ReLU), standardizing its input inside the
  graph, trained on the teacher's probabilities (soft targets: cross-entropy against them) or
  its values (mean squared error), exported by torch.onnx;
- `gbm`: a LightGBM model trained on the teacher's labels (or its one value), converted by
  onnxmltools.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from maas.convert.pytorch import quiet_exporter
from maas.convert.source import require
from maas.errors import InvalidInput

if TYPE_CHECKING:
    from pathlib import Path

    from maas.distill.teacher import TeacherTask

SEED = 0
BATCH_ROWS = 64
OPSET = 18


def train_mlp(
    task: TeacherTask,
    rows: np.ndarray,
    answers: dict[str, np.ndarray],
    output_names: list[str],
    *,
    widths: tuple[int, ...],
    epochs: int,
) -> Any:
    """A trained MLP module answering as the teacher does, outputs in `output_names` order."""
    torch = require("torch")
    torch.manual_seed(SEED)
    threads = torch.get_num_threads()
    # A small network's steps are too short to share across threads: one is several times faster.
    torch.set_num_threads(1)
    try:
        return _fit(task, rows, answers, output_names, widths=widths, epochs=epochs)
    finally:
        torch.set_num_threads(threads)


def _fit(
    task: TeacherTask,
    rows: np.ndarray,
    answers: dict[str, np.ndarray],
    output_names: list[str],
    *,
    widths: tuple[int, ...],
    epochs: int,
) -> Any:
    torch = require("torch")
    features = torch.from_numpy(rows.astype(np.float32))
    targets = torch.from_numpy(_targets(task, answers).astype(np.float32))
    # A regressor learns standardized values (the teacher's may be in the hundreds) and the
    # graph scales them back; probabilities are learned as they are.
    shift = torch.zeros(targets.shape[1]) if task.classifier else targets.mean(dim=0)
    scale = torch.ones(targets.shape[1]) if task.classifier else targets.std(dim=0).clamp_min(1e-6)
    targets = (targets - shift) / scale
    mean = features.mean(dim=0)
    std = features.std(dim=0)
    # A column constant in training (digits' blank corners) is only centred: dividing by a
    # tiny spread would turn any other value of it, later, into a huge one.
    std = torch.where(std < 1e-6, torch.ones_like(std), std)
    layers: list[Any] = []
    width_in = features.shape[1]
    for width in widths:
        layers += [torch.nn.Linear(width_in, width), torch.nn.ReLU()]
        width_in = width
    layers.append(torch.nn.Linear(width_in, targets.shape[1]))
    network = torch.nn.Sequential(*layers)
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    for _ in range(epochs):
        order = torch.randperm(len(features))
        for start in range(0, len(order), BATCH_ROWS):
            batch = order[start : start + BATCH_ROWS]
            predicted = network((features[batch] - mean) / std)
            if task.classifier:
                loss = -(targets[batch] * torch.log_softmax(predicted, dim=1)).sum(dim=1).mean()
            else:
                loss = torch.nn.functional.mse_loss(predicted, targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    value_shapes = [
        (int(np.asarray(answers[name]).reshape(len(rows), -1).shape[1]), np.asarray(answers[name]).ndim == 1)
        for name in task.values
    ]
    return _student_module(
        task,
        network=network,
        mean=mean,
        std=std,
        output_names=output_names,
        value_shapes=value_shapes,
        unscale=(shift, scale),
    ).eval()


def _targets(task: TeacherTask, answers: dict[str, np.ndarray]) -> np.ndarray:
    if task.probabilities is not None:
        return np.asarray(answers[task.probabilities], dtype=np.float64)
    if task.label is not None:
        columns = np.searchsorted(np.asarray(task.classes), task.labels_of(answers))
        return np.eye(len(task.classes))[columns]
    return np.hstack([np.asarray(answers[name], dtype=np.float64).reshape(len(next(iter(answers.values()))), -1)
                      for name in task.values])  # fmt: skip


def _student_module(
    task: TeacherTask,
    *,
    network: Any,
    mean: Any,
    std: Any,
    output_names: list[str],
    value_shapes: list[tuple[int, bool]],
    unscale: tuple[Any, Any],
) -> Any:
    torch = require("torch")
    label_dtype = torch.from_numpy(np.zeros(1, task.label_dtype or np.int64)).dtype
    # A regressor's outputs: (start column, columns, whether the teacher answers [N] not [N, k]).
    value_slices = []
    start = 0
    for width, flat in value_shapes:
        value_slices.append((start, width, flat))
        start += width

    class Student(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            # Each layer as MatMul and Add of its transposed weights (nn.Linear exports as Gemm,
            # which int8-dynamic quantization does not rewrite and pruning would read the same).
            linears = [layer for layer in network if isinstance(layer, torch.nn.Linear)]
            self.weights = [layer.weight.detach().T.contiguous() for layer in linears]
            self.biases = [layer.bias.detach().clone() for layer in linears]
            for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
                self.register_buffer(f"weight{i}", weight)
                self.register_buffer(f"bias{i}", bias)
            self.register_buffer("shift", unscale[0])
            self.register_buffer("scale", unscale[1])
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)
            self.register_buffer("classes", torch.tensor(task.classes or [0], dtype=label_dtype))

        def forward(self, features: Any) -> Any:
            answer = (features - self.mean) / self.std
            last = len(self.weights) - 1
            for i in range(last + 1):
                answer = torch.matmul(answer, getattr(self, f"weight{i}")) + getattr(self, f"bias{i}")
                if i < last:
                    answer = torch.relu(answer)
            if not task.classifier:
                answer = answer * self.scale + self.shift
                return tuple(
                    answer[:, first] if flat else answer[:, first : first + width]
                    for first, width, flat in value_slices
                )
            probabilities = torch.softmax(answer, dim=1)
            by_name = {
                task.probabilities: probabilities,
                task.label: self.classes[torch.argmax(answer, dim=1)],
            }
            return tuple(by_name[name] for name in output_names)

    return Student()


def export_mlp(module: Any, task: TeacherTask, output_names: list[str], target: Path) -> None:
    """Write the student as ONNX: the teacher's input name, a dynamic batch, its output names."""
    torch = require("torch")
    require("onnxscript")
    quiet_exporter()
    example = (torch.zeros(2, task.features),)
    program = torch.onnx.export(
        module,
        example,
        input_names=[task.input_name],
        output_names=output_names,
        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
        report=False,
    )
    program.save(str(target))


def train_gbm(
    task: TeacherTask, rows: np.ndarray, answers: dict[str, np.ndarray], output_names: list[str], target: Path
) -> None:
    """Train a LightGBM student on the teacher's labels (or single value) and write it as ONNX."""
    lgb = require("lightgbm")
    require("onnxmltools")
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    if task.classifier:
        model = lgb.LGBMClassifier(n_estimators=100, num_leaves=15, random_state=SEED, verbose=-1)
        labels = task.labels_of(answers)
        if task.probabilities is not None and len(np.unique(labels)) != len(task.classes):
            raise InvalidInput(
                "a gbm student needs every class of the teacher among the training rows' labels: use --student mlp"
            )
        model.fit(rows, labels)
        renames = {"label": task.label, "probabilities": task.probabilities}
    else:
        if len(task.values) != 1 or np.asarray(answers[task.values[0]]).reshape(len(rows), -1).shape[1] != 1:
            raise InvalidInput("a gbm student predicts one value: for several outputs, use --student mlp")
        model = lgb.LGBMRegressor(n_estimators=200, num_leaves=15, random_state=SEED, verbose=-1)
        model.fit(rows, np.asarray(answers[task.values[0]]).reshape(-1))
        renames = {"variable": task.values[0]}
    onnx_model = convert_lightgbm(
        model,
        initial_types=[(task.input_name, FloatTensorType([None, task.features]))],
        zipmap=False,
        target_opset=15,
    )
    _rename_outputs(onnx_model, renames, output_names)
    target.write_bytes(onnx_model.SerializeToString())


def _rename_outputs(onnx_model: Any, renames: dict[str, str | None], output_names: list[str]) -> None:
    """Give the converted outputs the teacher's names, in its order, dropping those it lacks."""
    import onnx

    graph = onnx_model.graph
    mapping = {old: new for old, new in renames.items() if new}
    for node in graph.node:
        node.output[:] = [mapping.get(name, name) for name in node.output]
        node.input[:] = [mapping.get(name, name) for name in node.input]
    by_name = {}
    for output in graph.output:
        copy = onnx.ValueInfoProto()
        copy.CopyFrom(output)
        copy.name = mapping.get(output.name, output.name)
        dims = copy.type.tensor_type.shape.dim
        if len(dims) == 1 and dims[0].HasField("dim_value"):
            dims[0].dim_param = "N"  # onnxmltools declares LightGBM's label as [1]
        by_name[copy.name] = copy
    del graph.output[:]
    graph.output.extend(by_name[name] for name in output_names if name in by_name)
