"""Registration loads an untrusted file to read its signature, in a child process: a runtime
that crashes on the file refuses it, naming the signal, and the registry lives on."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

from maas.errors import ArtifactError, InvalidInput
from maas.registry import Registry
from maas.runtimes import RUNTIMES, load_runtime
from maas.runtimes.probe import signature_in_child
from tests import fakes
from tests.functional.conftest import make_registry

DEMO_TFLITE = resources.files("maas.local") / "assets" / "digits-int8.tflite"


@pytest.fixture
def memory_registry(aws_endpoint: str) -> Registry:
    return make_registry("memory", aws_endpoint)


@pytest.fixture
def crashing_onnx(monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX files load with a runtime that dies by SIGSEGV (fakes.CrashingRuntime)."""
    monkeypatch.setitem(RUNTIMES, "onnx", ((".onnx", ".ort"), "tests.fakes:CrashingRuntime"))


def _with_pid_marker(path: Path) -> Path:
    path.with_suffix(".pid").write_text(str(os.getpid()))
    return path


def test_the_child_reads_the_signature_a_load_in_this_process_reads(artifacts: dict[str, Path]) -> None:
    for name, framework in (("sum", "onnx"), ("digits", "onnx"), ("tflite", "tflite")):
        assert signature_in_child(artifacts[name], framework) == load_runtime(artifacts[name]).signature


def test_a_file_that_crashes_its_runtime_is_refused_naming_the_signal_and_nothing_is_stored(
    memory_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _with_pid_marker(fakes.sum_model(tmp_path / "model.onnx"))
    with monkeypatch.context() as patched:
        patched.setitem(RUNTIMES, "onnx", ((".onnx", ".ort"), "tests.fakes:CrashingRuntime"))
        with pytest.raises(
            InvalidInput,
            match=r"cannot register 'model\.onnx': the onnx runtime crashed loading 'model\.onnx' \(SIGSEGV\)",
        ):
            memory_registry.register("crasher", model)
    assert memory_registry.models().items == []
    # ... and the registry goes on registering.
    assert memory_registry.register("sum", fakes.sum_model(tmp_path / "sum.onnx")).version == 1


@pytest.mark.usefixtures("crashing_onnx")
def test_a_load_that_never_ends_is_refused_after_its_time(tmp_path: Path) -> None:
    model = _with_pid_marker(fakes.sum_model(tmp_path / "hang.onnx"))
    with pytest.raises(ArtifactError, match=r"'hang\.onnx' did not load within 1 s"):
        signature_in_child(model, "onnx", timeout=1)


def test_damaged_tflite_files_are_refused_at_registration_and_nothing_is_stored(
    memory_registry: Registry, tmp_path: Path
) -> None:
    refused = 0
    for index, (damage, data) in enumerate(fakes.mutants(DEMO_TFLITE.read_bytes(), 60, seed=2)):
        model = tmp_path / f"{index}" / "model.tflite"
        model.parent.mkdir()
        model.write_bytes(data)
        try:
            memory_registry.register("digits-tflite", model)
        except InvalidInput as error:
            assert error.message.startswith("cannot register 'model.tflite': "), (damage, error.message)
            assert "crashed" not in error.message, (damage, error.message)  # verified, never loaded
            refused += 1
    assert 30 < refused < 60  # flipped weights still load
    assert len(memory_registry.versions("digits-tflite").items) == 60 - refused
