"""Batch inference throughput against a bare baseline, in one process.

maas: `BatchProcessor` on a JSON Lines file of digits rows in S3 (the embedded moto
server on loopback): download, parse and check rows, predict in chunks of 1,024, write
outputs and manifest back to S3. Baseline: read the same file from local disk,
`json.loads` each line, one `session.run` per 1,024 rows, write JSON lines to disk.
Each is run `--repeat` times, alternating, so that both see the same load on a shared
machine; prints the median rows per second of each and the ratio of the medians.

    .venv/bin/python bench/batch_throughput.py [--rows 50000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def baseline(path: Path, model: Path, out: Path) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    with path.open() as rows, out.open("w") as results:
        chunk: list[list[float]] = []

        def flush() -> None:
            label, probabilities = session.run(None, {"input": np.asarray(chunk, dtype=np.float32)})
            for one_label, one in zip(label.tolist(), probabilities.tolist(), strict=True):
                results.write(json.dumps({"label": one_label, "probabilities": one}) + "\n")
            chunk.clear()

        for line in rows:
            chunk.append(json.loads(line))
            if len(chunk) == 1024:
                flush()
        if chunk:
            flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each, alternating (median)")
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    import boto3

    from maas.batch import BatchProcessor
    from maas.dataplane import DataPlane
    from maas.local.aws import EmbeddedAws
    from maas.local.demo import build_digits_onnx
    from maas.sources import DirectorySource

    scratch = Path(tempfile.mkdtemp(prefix="maas-batch-bench-"))
    model = scratch / "models" / "digits" / "1" / "model.onnx"
    build_digits_onnx(model)
    rows = np.random.default_rng(0).integers(0, 17, size=(args.rows, 64))
    source = scratch / "rows.jsonl"
    source.write_text("\n".join(json.dumps(row) for row in rows.tolist()) + "\n")

    aws = EmbeddedAws()
    endpoint = aws.start()
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="bench")
        s3.upload_file(str(source), "bench", "inputs/digits/rows.jsonl")
        plane = DataPlane(DirectorySource(scratch / "models"))
        plane.preload(["digits"])
        processor = BatchProcessor(plane, s3)
        served, bare = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            manifest = processor.process("bench", "inputs/digits/rows.jsonl")
            served.append(time.perf_counter() - started)
            assert manifest.rows_out == args.rows
            started = time.perf_counter()
            baseline(source, model, scratch / "baseline.jsonl")
            bare.append(time.perf_counter() - started)
    finally:
        aws.stop()
    maas_seconds, bare_seconds = statistics.median(served), statistics.median(bare)
    print(
        f"python {sys.version.split()[0]}, {args.rows} rows of 64 values, chunks of 1,024, median of {args.repeat}"
    )
    print(
        f"baseline (local file, json.loads, session.run, json lines): {args.rows / bare_seconds:10.0f} rows/s"
    )
    print(
        f"maas     (S3 in and out via moto, checks, errors, manifest): {args.rows / maas_seconds:10.0f} rows/s"
    )
    print(f"ratio maas/baseline throughput: {bare_seconds / maas_seconds:.2f}")


if __name__ == "__main__":
    main()
