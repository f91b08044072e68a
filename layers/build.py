"""Build the Lambda layers: one per model runtime and architecture, with pip, no Docker.

    .venv/bin/python layers/build.py                      # every layer, into layers/build/
    .venv/bin/python layers/build.py --runtime onnx --arch arm64 --force

Wheels are chosen for the Lambda runtime that will load them: Python 3.11 runs on
Amazon Linux 2 (glibc 2.26), Python 3.12 on Amazon Linux 2023 (glibc 2.34), so each
layer lists exactly the manylinux tags its glibc can load (pip does not widen a
`--platform`). The layers hold third-party packages only; the function asset holds
the handler and the `maas` package. Prints each layer's unzipped size, and function +
layer against Lambda's 250 MB limit, and fails past it.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
LAMBDA_LIMIT = 250 * 1024 * 1024
# Bump when the way layers are made changes, so cached builds are redone.
BUILD_VERSION = "1"
# glibc of the Amazon Linux each Lambda Python runs on.
GLIBC_MINOR = {"3.11": 26, "3.12": 34}
MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}
# The Lambda runtime provides these; a copy in a layer is dead weight.
PROVIDED = ("boto3", "botocore", "s3transfer")


@dataclass(frozen=True)
class LayerSpec:
    runtime: str
    arch: str
    python: str
    requirements: str
    # Paths under python/ that serving never imports: the runtimes' converters, tools and
    # accelerators for hardware Lambda does not have, numpy's f2py and self-test SIMD module.
    drop: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.runtime}-{self.arch}"


NUMPY_UNUSED = (
    "numpy/f2py",
    "numpy/_core/_simd.*.so",
    "numpy/_core/include",  # C headers and static libraries: for building extensions only
    "numpy/_core/lib",
    "numpy/random/lib",
    "numpy/random/_examples",
    "bin/f2py",
    "bin/numpy-config",
    # The exporter's Prometheus client: the metrics function has it, on the registry layer.
    "prometheus_client",
    "prometheus_client-*.dist-info",
)
# onnxruntime's transformer optimizers, quantization and tools (maas optimize runs them off
# Lambda), and protobuf, which only they import.
ONNX_UNUSED = (
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/tools",
    "onnxruntime/backend",
    "bin/onnxruntime_test",
    "google",
    "protobuf-*.dist-info",
    "flatbuffers",
    "flatbuffers-*.dist-info",
    "packaging",  # only onnxruntime.backend imports it
    "packaging-*.dist-info",
)
# LiteRT's GPU (WebGPU) accelerator, NPU compiler plugins, converter, calibration, its
# apply_plugin tool and the CompiledModel runtime, and what only they import (tqdm,
# ml_dtypes): serving runs the CPU Interpreter only.
LITERT_UNUSED = (
    "ai_edge_litert/libLiteRtWebGpuAccelerator.so",
    "ai_edge_litert/vendors",
    "ai_edge_litert/tools",
    "ai_edge_litert/aot",
    "ai_edge_litert/_pywrap_litert_converter.so",
    "ai_edge_litert/_pywrap_tensorflow_lite_calibration_wrapper.so",
    "ai_edge_litert/_pywrap_tfl_calibration.so",
    "ai_edge_litert/_pywrap_modify_model_interface.so",
    "ai_edge_litert/_pywrap_analyzer_wrapper.so",
    "ai_edge_litert/pywrap_genai_ops.so",
    "ai_edge_litert/libLiteRt.so",  # the CompiledModel API's runtime; the Interpreter links without it
    "tqdm",
    "tqdm-*.dist-info",
    "ml_dtypes",
    "ml_dtypes-*.dist-info",
)

LAYERS = {
    ("onnx", "arm64"): LayerSpec("onnx", "arm64", "3.12", "onnx.txt", NUMPY_UNUSED + ONNX_UNUSED),
    ("onnx", "x86_64"): LayerSpec("onnx", "x86_64", "3.12", "onnx.txt", NUMPY_UNUSED + ONNX_UNUSED),
    # ai-edge-litert on both: Python 3.12 (SnapStart) and numpy 2; tflite-runtime stops at 3.11.
    ("tflite", "x86_64"): LayerSpec("tflite", "x86_64", "3.12", "litert.txt", NUMPY_UNUSED + LITERT_UNUSED),
    ("tflite", "arm64"): LayerSpec("tflite", "arm64", "3.12", "litert.txt", NUMPY_UNUSED + LITERT_UNUSED),
    ("registry", "arm64"): LayerSpec("registry", "arm64", "3.12", "registry.txt"),
    ("registry", "x86_64"): LayerSpec("registry", "x86_64", "3.12", "registry.txt"),
}


def layer_spec(runtime: str, arch: str) -> LayerSpec:
    try:
        return LAYERS[(runtime, arch)]
    except KeyError:
        known = ", ".join(f"{r}/{a}" for r, a in LAYERS)
        raise SystemExit(f"no layer for runtime '{runtime}' on '{arch}' (known: {known})") from None


def lambda_python_runtime(spec: LayerSpec) -> str:
    return f"python{spec.python}"


def platform_tags(spec: LayerSpec) -> list[str]:
    machine = MACHINE[spec.arch]
    tags = [f"manylinux2014_{machine}"]
    tags += [f"manylinux_2_{minor}_{machine}" for minor in range(17, GLIBC_MINOR[spec.python] + 1)]
    return tags


def requirement_text(name: str) -> str:
    """A requirements file with the files it includes (`-r`), for the cache key."""
    text = (HERE / name).read_text()
    included = [line.split(maxsplit=1)[1] for line in text.splitlines() if line.startswith("-r ")]
    return text + "".join(requirement_text(other) for other in included)


def stamp(spec: LayerSpec) -> str:
    key = "\n".join(
        [BUILD_VERSION, spec.python, *platform_tags(spec), requirement_text(spec.requirements), *spec.drop]
    )
    return hashlib.sha256(key.encode()).hexdigest()


def build_layer(spec: LayerSpec, out_dir: Path, force: bool = False) -> Path:
    """Build (or reuse) the layer; returns its root, the directory holding `python/`."""
    root = out_dir / spec.name
    stamp_file = root / ".stamp"
    if not force and stamp_file.is_file() and stamp_file.read_text() == stamp(spec):
        return root
    shutil.rmtree(root, ignore_errors=True)
    target = root / "python"
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
    ]
    # The packages of the environment running pip are not the layer's: their conflicts are noise.
    command += ["--no-warn-conflicts"]
    command += ["--target", str(target), "--only-binary=:all:", "--implementation", "cp"]
    command += ["--python-version", spec.python, "--upgrade", "-r", str(HERE / spec.requirements)]
    for tag in platform_tags(spec):
        command += ["--platform", tag]
    print(f"building layer {spec.name} (Python {spec.python})", file=sys.stderr)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pip could not build layer {spec.name}:\n{done.stderr[-4000:]}")
    trim(target)
    drop_unused(target, spec.drop)
    stamp_file.write_text(stamp(spec))
    return root


def trim(target: Path) -> None:
    """Drop what Lambda never uses: caches, type stubs, packages' own tests, boto."""
    for path in sorted(target.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if not path.exists():
            continue
        if path.is_dir() and (
            path.name == "__pycache__" or (path.name in ("tests", "test") and path.parent != target)
        ):
            shutil.rmtree(path)
        elif path.is_file() and path.suffix in (".pyc", ".pyi"):
            path.unlink()
    for entry in target.iterdir():
        base = entry.name.split("-")[0].lower()
        if base in PROVIDED and entry.is_dir():
            shutil.rmtree(entry)


def drop_unused(target: Path, patterns: tuple[str, ...]) -> None:
    """Delete what `patterns` (globs under `target`) name: parts of packages serving never imports."""
    for pattern in patterns:
        for path in target.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def unpack_as_lambda(
    layer_root: Path, function_dirs: list[tuple[Path, str]], into: Path
) -> tuple[Path, Path]:
    """The layer and the function asset as Lambda lays them out, each zipped and unzipped as
    the upload does: the layer's `python/` under `<into>/opt`, the asset (each `(directory,
    name)`: `functions/predict` as `.`, `maas` as `maas`) under `<into>/var/task`, without
    caches. Returns (task root, the layer's `python/`), the two paths Lambda puts on sys.path."""
    import zipfile

    task, opt = into / "var" / "task", into / "opt"
    into.mkdir(parents=True, exist_ok=True)
    for name, sources, target in (
        ("layer.zip", [(layer_root, ".")], opt),
        ("function.zip", function_dirs, task),
    ):
        archive = into / name
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as packed:
            for source, prefix in sources:
                for path in sorted(source.rglob("*")):
                    if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                        if path.name == ".stamp":
                            continue
                        packed.write(path, str(Path(prefix) / path.relative_to(source)))
        with zipfile.ZipFile(archive) as packed:
            packed.extractall(target)
        archive.unlink()
    return task, opt / "python"


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


def report(built: dict[LayerSpec, Path], function_dirs: list[Path]) -> bool:
    """Print sizes; False if any function + layer passes Lambda's limit."""
    function = sum(directory_size(d) for d in function_dirs)
    mb = 1024 * 1024
    print(f"{'layer':<18}{'python':>7}{'layer MB':>10}{'+function MB':>14}{'limit MB':>10}")
    fits = True
    for spec, root in built.items():
        size = directory_size(root / "python")
        total = size + function
        fits = fits and total <= LAMBDA_LIMIT
        flag = "" if total <= LAMBDA_LIMIT else "  OVER THE LIMIT"
        print(
            f"{spec.name:<18}{spec.python:>7}{size / mb:>10.1f}{total / mb:>14.1f}{LAMBDA_LIMIT / mb:>10.0f}{flag}"
        )
    return fits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", action="append", choices=sorted({r for r, _ in LAYERS}))
    parser.add_argument("--arch", action="append", choices=sorted(MACHINE))
    parser.add_argument("--out", type=Path, default=HERE / "build")
    parser.add_argument("--function-dir", action="append", type=Path)
    parser.add_argument("--force", action="store_true", help="rebuild even if a cached build matches")
    args = parser.parse_args(argv)
    selected = [
        spec
        for (runtime, arch), spec in LAYERS.items()
        if (not args.runtime or runtime in args.runtime) and (not args.arch or arch in args.arch)
    ]
    built = {spec: build_layer(spec, args.out, args.force) for spec in selected}
    functions = args.function_dir or [REPO_ROOT / "functions" / "predict", REPO_ROOT / "maas"]
    if not report(built, functions):
        print("a function with its layer is over Lambda's 250 MB unzipped limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
