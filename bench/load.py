"""Load on `maas dev` over loopback: 32 keep-alive clients for 60 s on one digits row each,
against a bare baseline served the same way in the same run (a ThreadingHTTPServer that
runs the same ONNX model on the same body, without the gateway, event, Powertools or
registry). Prints throughput, latency percentiles and errors for both, and the ratios.

    .venv/bin/python bench/load.py [--seconds 60] [--clients 32]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ROW = [0, 0, 5, 13, 9, 1, 0, 0] * 8
BODY = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]}).encode()
PATH = "/v2/models/digits/infer"
KINDS: Counter[str] = Counter()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def drive(port: int, seconds: float, clients: int) -> tuple[list[float], int, int]:
    """`clients` threads, each on its own keep-alive connection, for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                connection.request("POST", PATH, BODY, {"content-type": "application/json"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    errors[index] += 1
                    KINDS[f"HTTP {response.status}"] += 1
            except OSError as error:
                errors[index] += 1
                KINDS[type(error).__name__] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            latencies[index].append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = [value for per in latencies for value in per]
    return flat, len(flat), sum(errors)


def wait_until_answering(port: int, limit: float = 180) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        _, count, errors = drive(port, 0.1, 1)
        if count and not errors:
            return
        time.sleep(0.5)
    raise SystemExit("maas dev did not answer")


def bare_server(model: Path) -> ThreadingHTTPServer:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            tensor = request["inputs"][0]
            array = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
            label = session.run(["label"], {"input": array})[0]
            body = json.dumps({"outputs": [{"name": "label", "data": label.tolist()}]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer.request_queue_size = 128  # as the gateway's
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def report(name: str, latencies: list[float], count: int, errors: int, seconds: float) -> float:
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    rate = count / seconds
    print(
        f"{name:<9}{count:>9}{errors:>8}{rate:>10.0f}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}{max(latencies):>9.1f}"
    )
    return float(rate)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="maas-load-"))
    port, aws_port = free_port(), free_port()
    log = (scratch / "dev.log").open("w")
    dev = subprocess.Popen(
        [sys.executable, "-m", "maas.cli", "dev", "--port", str(port), "--aws-port", str(aws_port),
         "--models", str(scratch / "models"), "--state", str(scratch / "state")],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        wait_until_answering(port)
        KINDS.clear()  # refusals while it started are not errors of the run
        bare = bare_server(scratch / "models" / "digits" / "1" / "model.onnx")
        print(f"{args.clients} clients, {args.seconds:g} s each, 1 digits row per request, loopback")
        print(
            f"{'server':<9}{'requests':>9}{'errors':>8}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        )
        bare_rate = report("bare", *drive(bare.server_address[1], args.seconds, args.clients), args.seconds)
        dev_latencies, count, errors = drive(port, args.seconds, args.clients)
        dev_rate = report("maas dev", dev_latencies, count, errors, args.seconds)
        print(f"throughput ratio maas dev / bare: {dev_rate / bare_rate:.2f}")
        print(f"errors by kind: {dict(KINDS) or 'none'}")
        bare.shutdown()
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=60)


if __name__ == "__main__":
    main()
