"""The Lambda layers: each x86_64 build serves the demo model on its own, each arm64 build
holds only arm64 binaries, and every function fits Lambda's 250 MB."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from maas_stack.bundling import layer_builder

from maas.local.demo import build_digits_onnx, digits_split

pytestmark = pytest.mark.layers

REPO_ROOT = Path(__file__).resolve().parents[2]
AARCH64 = 0xB7


builder = layer_builder()
OUT = REPO_ROOT / "layers" / "build"

# A prediction run by the layer's own Python with nothing on its path but the layer and
# the function code: -S (no site-packages) and -E (no PYTHON* variables).
PROBE = """
import json, sys
from pathlib import Path
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import numpy
runtime_module = __import__(sys.argv[3])
from maas.runtimes import load_runtime
features = numpy.load(sys.argv[5])
outputs = load_runtime(Path(sys.argv[4])).predict({"input": features})
print(json.dumps({
    "numpy": numpy.__version__,
    "numpy_file": numpy.__file__,
    "runtime_file": runtime_module.__file__,
    "labels": outputs["label"].tolist(),
}))
"""


def find_python(version: str) -> str | None:
    """An interpreter of `version` that actually runs (a pyenv shim may exist without it):
    the one `make setup` found, else one on the PATH or under pyenv."""
    recorded = REPO_ROOT / ".venv" / f"python{version}.path"
    candidates = [recorded.read_text().strip() if recorded.is_file() else None]
    candidates += [shutil.which(f"python{version}")]
    candidates += [
        str(p) for p in sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))
    ]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    _, features, _, labels = digits_split()
    path = tmp_path_factory.mktemp("digits") / "features.npy"
    np.save(path, features)
    return path, labels


@pytest.mark.parametrize(
    ("runtime", "module", "model"),
    [
        ("onnx", "onnxruntime", "model.onnx"),
        # ai-edge-litert on Python 3.12 since issue 19 (tflite-runtime stops at 3.11).
        ("tflite", "ai_edge_litert", "maas/local/assets/digits-int8.tflite"),
    ],
)
def test_the_x86_64_layer_alone_serves_the_demo_model(
    runtime: str, module: str, model: str, held_out: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    spec = builder.layer_spec(runtime, "x86_64")
    python = find_python(spec.python)
    if python is None:  # a skip here would pass a suite that never loaded the layer
        pytest.fail(
            f"python{spec.python} is needed to load the {spec.name} layer and none runs here: "
            f"`make setup` finds one (on the PATH or under pyenv) or says how to get one"
        )
    layer = builder.build_layer(spec, OUT) / "python"
    if model == "model.onnx":
        model_path = tmp_path / model
        build_digits_onnx(model_path)
    else:
        model_path = REPO_ROOT / model
    features, labels = held_out
    done = subprocess.run(
        [
            python,
            "-B",
            "-S",
            "-E",
            "-c",
            PROBE,
            str(layer),
            str(REPO_ROOT),
            module,
            str(model_path),
            str(features),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["numpy_file"].startswith(str(layer))
    assert result["runtime_file"].startswith(str(layer))
    assert (np.array(result["labels"]) == labels).mean() > 0.9


def elf_machine(path: Path) -> int | None:
    header = path.read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


@pytest.mark.parametrize("runtime", ["onnx", "tflite", "registry"])
def test_arm64_layers_hold_only_arm64_binaries(runtime: str) -> None:
    layer = builder.build_layer(builder.layer_spec(runtime, "arm64"), OUT) / "python"
    binaries = [p for p in layer.rglob("*") if p.is_file() and ".so" in p.name]
    assert binaries, "expected compiled extensions in the layer"
    machines = {path.name: elf_machine(path) for path in binaries}
    assert {m for m in machines.values() if m is not None} == {AARCH64}, machines
    for wheel in layer.glob("*.dist-info/WHEEL"):
        tags = [
            line.split(":", 1)[1].strip()
            for line in wheel.read_text().splitlines()
            if line.startswith("Tag:")
        ]
        assert all(tag.endswith("-any") or "aarch64" in tag for tag in tags), (wheel, tags)


def test_every_function_with_its_layer_fits_lambda_and_layers_are_trimmed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert builder.main(["--out", str(OUT)]) == 0
    table = capsys.readouterr().out
    for spec in builder.LAYERS.values():
        assert spec.name in table
        layer = OUT / spec.name / "python"
        assert not list(layer.rglob("__pycache__"))
        assert not list(layer.rglob("*.pyi"))
        assert not (layer / "boto3").exists()
        assert not (layer / "botocore").exists()
        assert builder.directory_size(layer) < builder.LAMBDA_LIMIT


def test_trim_drops_caches_stubs_package_tests_and_what_lambda_provides(tmp_path: Path) -> None:
    # No layer today pulls in boto3, so the real builds cannot show that trimming removes it.
    kept = ["pkg/__init__.py", "pkg/testing/util.py", "tests/conftest.py", "pkg-1.0.dist-info/WHEEL"]
    dropped = [
        "pkg/__pycache__/mod.cpython-312.pyc",
        "pkg/stale.pyc",
        "pkg/mod.pyi",
        "pkg/tests/test_mod.py",
        "pkg/sub/test/data.bin",
        "boto3/__init__.py",
        "boto3-1.35.0.dist-info/WHEEL",
        "botocore/__init__.py",
        "s3transfer-0.10.0.dist-info/RECORD",
    ]
    for name in kept + dropped:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    builder.trim(tmp_path)
    assert [name for name in kept if not (tmp_path / name).exists()] == []
    assert [name for name in dropped if (tmp_path / name).exists()] == []
    for gone in ("pkg/__pycache__", "pkg/tests", "pkg/sub/test", "boto3", "botocore"):
        assert not (tmp_path / gone).exists(), gone
