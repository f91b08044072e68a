"""What the request limits cost and what they hold, for the numbers in RELIABILITY.md.

1. Overhead: the median of one-row digits predictions through OnnxRuntime with no limits,
   with a deadline (the watchdog), and with a deadline and a memory budget (the shared
   arena, shrunk after each run), interleaved so that machine noise hits all three alike.
2. Memory: in a fresh process per case, resident size before and after a ConstantOfShape
   asking for 1 GiB under a 256 MB budget (refused), and for 192 MB within it (served,
   then released); and the same 192 MB without a budget, as before the limits.
3. Deadline: how long a Loop of 10**12 trips runs past deadlines of 0.1 to 2 s.

    .venv/bin/python bench/request_limits.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MEMORY_CASE = """
import json, sys
import numpy as np
from pathlib import Path
from maas.runtimes import load_runtime
from maas.runtimes.budget import MB, Limits

def resident_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))

budget, rows = int(sys.argv[2]), int(sys.argv[3])
runtime = load_runtime(Path(sys.argv[1]), limits=Limits(memory_bytes=budget * MB) if budget else Limits())
runtime.predict({"shape": np.array([1, 1])})
before = resident_mb()
started = __import__("time").perf_counter()
try:
    outputs = runtime.predict({"shape": np.array([rows, 16384])})
    peak, answer = resident_mb(), "served"
    del outputs
    runtime.release()
except Exception as error:
    peak, answer = resident_mb(), type(error).__name__
seconds = __import__("time").perf_counter() - started
print(json.dumps({"answer": answer, "before": before, "peak": peak, "after": resident_mb(), "seconds": seconds}))
"""


def overhead(model: Path, repeat: int) -> dict[str, float]:
    from maas.runtimes import load_runtime
    from maas.runtimes.budget import MB, Limits

    cases = {
        "no limits": load_runtime(model, limits=Limits()),
        "deadline": load_runtime(model, limits=Limits(deadline_seconds=25.0)),
        "deadline + memory": load_runtime(model, limits=Limits(memory_bytes=512 * MB, deadline_seconds=25.0)),
    }
    row = {"input": np.zeros((1, 64), dtype=np.float32)}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, runtime in cases.items():
            started = time.perf_counter()
            runtime.predict(row)
            runtime.release()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


def memory(model: Path, budget_mb: int, rows: int) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_CASE, str(model), str(budget_mb), str(rows)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def deadline_overrun(model: Path, deadline: float) -> float:
    from maas.errors import DeadlineExceeded
    from maas.runtimes import load_runtime
    from maas.runtimes.budget import Limits

    runtime = load_runtime(model, limits=Limits(deadline_seconds=deadline))
    started = time.perf_counter()
    try:
        runtime.predict({"trips": np.array(10**12)})
    except DeadlineExceeded:
        return time.perf_counter() - started - deadline
    raise AssertionError("the loop was not stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()

    from maas.local.demo import build_digits_onnx
    from tests import fakes

    scratch = Path(tempfile.mkdtemp(prefix="maas-bench-limits-"))
    digits = scratch / "digits.onnx"
    build_digits_onnx(digits)
    filled = fakes.filled_model(scratch / "filled.onnx")
    looping = fakes.looping_model(scratch / "looping.onnx")

    print("one-row digits prediction, median of", args.repeat)
    for name, micros in overhead(digits, args.repeat).items():
        print(f"  {name:<20} {micros:7.1f} us")
    print("resident MB: before / peak / after (ConstantOfShape, rows x 16384 FP32)")
    for budget, rows, label in ((256, 16384, "1 GiB, 256 MB budget"), (256, 3072, "192 MB, 256 MB budget"),
                                (0, 3072, "192 MB, no budget")):  # fmt: skip
        case = memory(filled, budget, rows)
        print(
            f"  {label:<22} {case['answer']:<15} {case['before']:>5} / {case['peak']:>5} / {case['after']:>5}"
            f"  in {float(case['seconds']) * 1000:.0f} ms"  # type: ignore[arg-type]
        )
    print("Loop of 10**12 trips: time past the deadline")
    for deadline in (0.1, 0.5, 1.0, 2.0):
        print(
            f"  deadline {deadline:>4} s  stopped {deadline_overrun(looping, deadline) * 1000:6.1f} ms after it"
        )


if __name__ == "__main__":
    main()
