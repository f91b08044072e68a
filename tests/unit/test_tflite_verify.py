"""A hostile .tflite is refused before tflite-runtime's interpreter reads it: that interpreter
trusts the flatbuffer, and a file with a few bytes changed makes it read out of bounds and
kill its process (SIGSEGV, SIGBUS)."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from maas.errors import ArtifactError
from maas.runtimes import load_runtime
from maas.runtimes.tflite_verify import verify_tflite, verify_tflite_file
from tests import fakes

DEMO = resources.files("maas.local") / "assets" / "digits-int8.tflite"


def test_the_demo_model_and_a_model_written_by_hand_verify_and_run(tmp_path: Path) -> None:
    verify_tflite(DEMO.read_bytes())
    model = fakes.tflite_add_model(tmp_path / "add.tflite")
    verify_tflite_file(model)
    runtime = load_runtime(model)
    a, b = np.ones((1, 3), np.float32), np.full((1, 3), 2.0, np.float32)
    assert runtime.predict({"a": a, "b": b})["sum"].tolist() == [[3.0, 3.0, 3.0]]


def test_no_damaged_copy_of_the_demo_model_kills_the_process_that_loads_and_runs_it(tmp_path: Path) -> None:
    """300 mutants; before verification about half of them killed tflite-runtime."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    damage = {}
    for index, (name, data) in enumerate(fakes.mutants(DEMO.read_bytes(), 300, seed=1)):
        (corpus / f"{index:03d}.tflite").write_bytes(data)
        damage[f"{index:03d}.tflite"] = name
    child = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from maas.errors import MaasError
        from maas.runtimes import load_runtime
        loaded = 0
        for path in sorted(Path(sys.argv[1]).iterdir()):
            print(path.name, flush=True)
            try:
                load_runtime(path).warm()
                loaded += 1
            except MaasError:
                pass
        print("loaded", loaded, flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(corpus)], check=False, capture_output=True, text=True, timeout=120
    )
    printed = done.stdout.split()
    last = damage.get(printed[-1], "none") if printed else "none"
    killed = (
        f"signal {signal.Signals(-done.returncode).name}"
        if done.returncode < 0
        else f"exit {done.returncode}"
    )
    assert done.returncode == 0, f"loading mutant {last} ended the process ({killed}):\n{done.stderr[-2000:]}"
    assert printed[-2] == "loaded"


@pytest.mark.parametrize(
    ("damage", "refusal"),
    [
        ({"identifier": b"XXXX"}, "file identifier is b'XXXX', not b'TFL3'"),
        ({"buffer": 5}, "model.subgraphs[0].tensors[2].buffer: buffer 5 of 1"),
        ({"opcode_index": 3}, "model.subgraphs[0].operators[0].opcode_index: operator code 3 of 1"),
        ({"shape": (-5, 3)}, "model.subgraphs[0].tensors[0].shape: [-5, 3] has a negative dimension"),
        ({"scales": (math.nan,)}, "tensors[0].quantization.scale: a scale is negative or not finite"),
        ({"scales": (-1.0,)}, "tensors[0].quantization.scale: a scale is negative or not finite"),
        ({"scales": (1.0, 2.0)}, "quantized_dimension: 2 scales do not fit axis 0 of [1, 3]"),
        (
            {"signature_tensor": 99},
            "model.signature_defs[0].inputs[0].tensor_index: tensor 99 of 3 in subgraph 0",
        ),
    ],
)
def test_a_number_pointing_at_nothing_is_refused_naming_where_it_is(
    tmp_path: Path, damage: dict, refusal: str
) -> None:
    model = fakes.tflite_add_model(tmp_path / "model.tflite", **damage)
    with pytest.raises(
        ArtifactError, match=r"TFLite cannot load 'model\.tflite': not a valid TFLite file: "
    ) as raised:
        load_runtime(model)
    assert refusal in raised.value.message


def _word(data: bytes, at: int, value: int, size: int = 4) -> bytes:
    return data[:at] + value.to_bytes(size, "little") + data[at + size :]


@pytest.mark.parametrize(
    ("damage", "refusal"),
    [
        (lambda data: data[:6], "6 bytes is too short for a flatbuffer"),
        (lambda data: _word(data, 0, len(data)), "root: 1 bytes at byte"),
        (lambda data: _word(data, 0, 0), "root: offset 0 at byte 0 is not a valid reference"),
        (lambda data: _word(data, 0, 2), "model: byte 2 is not 4-byte aligned"),
        (lambda data: data[: len(data) // 2], "lie outside the file"),
    ],
)
def test_an_offset_outside_the_file_is_refused_before_any_interpreter_reads_it(
    damage: object, refusal: str
) -> None:
    with pytest.raises(ArtifactError) as raised:
        verify_tflite(damage(DEMO.read_bytes()), "digits.tflite")  # type: ignore[operator]
    assert refusal in raised.value.message, raised.value.message


def test_a_vtable_or_vector_that_runs_past_the_end_is_refused() -> None:
    data = DEMO.read_bytes()
    root = int.from_bytes(data[:4], "little")
    vtable = root - int.from_bytes(data[root : root + 4], "little", signed=True)
    with pytest.raises(ArtifactError, match=r"model \(vtable\): .* lie outside the file"):
        verify_tflite(_word(data, vtable, 0xFFFE, 2))  # the vtable's own size
    subgraphs_field = root + int.from_bytes(data[vtable + 8 : vtable + 10], "little")
    vector = subgraphs_field + int.from_bytes(data[subgraphs_field : subgraphs_field + 4], "little")
    with pytest.raises(ArtifactError, match=r"model.subgraphs: .* lie outside the file"):
        verify_tflite(_word(data, vector, 0x10000000))  # the length of Model.subgraphs


def test_the_interpreter_reads_the_very_bytes_that_were_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verified and loaded from one read of the file: a file replaced between a check and a
    second read could otherwise reach the interpreter unverified."""
    model = fakes.tflite_add_model(tmp_path / "add.tflite")
    reads = []
    real_read_bytes = Path.read_bytes

    def counted(path: Path) -> bytes:
        reads.append(path)
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", counted)
    load_runtime(model)
    assert reads == [model]
