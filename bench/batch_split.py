"""A batch file 10x larger than one part, split into parts on `maas dev`, against one part's
time x parts / concurrency: how close splitting gets to running its parts side by side.

`maas dev` runs in a subprocess with `--workers W` batch workers (its local Lambda runtime polls
the batch queue with W pollers, as Lambda's event source mapping scales), and
MAAS_BATCH_PART_MB set just above the size of a 1x file; a file of one part per worker warms
the workers first (maas dev starts them on demand, a cold start of seconds). The 1x file (ROWS digits rows, JSON
Lines) runs whole; the 10x file (the same rows ten times) is split into 10 parts. Prints:
the 1x file's time, the 10x file's wall time (upload to manifest, as `maas batch submit`
sees it, and the manifest's own duration, planning to last part), the mean part time, and
wall / (part time x parts / W). Also 10x rows/s against 1x rows/s.

    .venv/bin/python bench/batch_split.py [--rows 20000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def submit(aws: str, path: Path, timeout: float = 600) -> tuple[dict[str, object], float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "maas.cli", "batch", "submit", str(path), "--model", "digits",
         "--timeout", str(timeout)],
        env={**os.environ, "AWS_ENDPOINT_URL": aws}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"submit failed: {done.stderr}")
    return json.loads(done.stdout), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the 1x file")
    parser.add_argument("--workers", type=int, default=2, help="batch workers (the concurrency)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="maas-split-bench-"))
    rows = np.random.default_rng(0).integers(0, 17, size=(args.rows, 64)).astype(float).tolist()
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    one, ten = scratch / "one.jsonl", scratch / "ten.jsonl"
    one.write_text(lines)
    ten.write_text(lines * 10)
    part_mb = one.stat().st_size * 1.02 / (1024 * 1024)  # the 1x file is one part; 10x makes 10
    port, aws_port = free_port(), free_port()
    aws = f"http://127.0.0.1:{aws_port}"
    log = (scratch / "dev.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "maas.cli", "dev", "--port", str(port), "--aws-port", str(aws_port),
         "--workers", str(args.workers), "--state", str(scratch / "state"), "--models", str(scratch / "models")],
        env={**os.environ, "MAAS_BATCH_PART_MB": f"{part_mb:.6f}", "PYTHONUNBUFFERED": "1"},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while (
            "maas dev: ready" not in (scratch / "dev.log").read_text()
            and "http://127.0.0.1" not in (scratch / "dev.log").read_text()
        ):
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit((scratch / "dev.log").read_text())
            time.sleep(0.5)
        # Warm every batch worker (maas dev starts them on demand): a file of one part per
        # worker, whose parts run side by side, each worker loading the model once.
        warm = scratch / "warm.jsonl"
        warm.write_text(lines * args.workers)
        submit(aws, warm)
        whole, whole_wall = submit(aws, one)
        split, split_wall = submit(aws, ten)
    finally:
        server.terminate()
        server.wait(timeout=90)
    parts = split["parts"]
    assert isinstance(parts, list) and split["rows_in"] == 10 * args.rows, split
    part_seconds = [float(part["duration_seconds"]) for part in parts]
    mean_part = sum(part_seconds) / len(part_seconds)
    ideal = mean_part * len(parts) / args.workers
    print(f"python {sys.version.split()[0]}, 1x = {args.rows} rows ({one.stat().st_size / 1e6:.1f} MB), "
          f"10x = {10 * args.rows} rows, {len(parts)} parts, {args.workers} batch workers")  # fmt: skip
    print(
        f"1x file, whole:      {float(whole['duration_seconds']):6.2f} s in the function, {whole_wall:6.2f} s submit to manifest"
    )
    print(
        f"one part (mean of {len(parts)}): {mean_part:6.2f} s (min {min(part_seconds):.2f}, max {max(part_seconds):.2f})"
    )
    print(
        f"10x file, split:     {float(split['duration_seconds']):6.2f} s planning to last part, {split_wall:6.2f} s submit to manifest"
    )
    print(f"ideal (part x parts / workers): {ideal:6.2f} s")
    first = min(float(part["started_at"]) for part in parts)
    last = max(float(part["started_at"]) + float(part["duration_seconds"]) for part in parts)
    planned_at = last - float(split["duration_seconds"])
    print(f"planning (scan, plan, send): {first - planned_at:6.2f} s before the first part; parts ran "
          f"{last - first:.2f} s, {sum(part_seconds) / (last - first):.2f} at once on average")  # fmt: skip
    for part in sorted(parts, key=lambda part: float(part["started_at"])):
        began = float(part["started_at"]) - first
        print(f"  part {part['part']:2}: {began:6.2f} s to {began + float(part['duration_seconds']):6.2f} s")
    print(f"ratio wall / ideal: {split_wall / ideal:.2f} (submit to manifest), "
          f"{float(split['duration_seconds']) / ideal:.2f} (planning to last part)")  # fmt: skip
    print(f"throughput 10x split vs 1x whole: {10 * whole_wall / split_wall:.2f}x")


if __name__ == "__main__":
    main()
