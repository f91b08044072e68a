"""Warm Lambda "containers" on this machine: worker processes (`maas.local.lambda_worker`),
a pool of them per function, as Lambda keeps several warm containers of a busy function.

An invocation goes to an idle worker of its function, or waits for one; each worker runs
one invocation at a time. A pool grows to its size as invocations overlap (or at once,
with `warm`). A worker that dies mid-invocation (a runtime's segfault, an abort, the OOM
killer) fails that invocation with WorkerCrashed and is replaced; one that runs past the
function's timeout is killed and replaced, as Lambda ends it. Nothing a worker does can
take the calling process down: models run only in workers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

# How long a worker may take to import its handler (its init phase: imports, preloading models).
START_TIMEOUT_SECONDS = 120.0
# Restarts after failed starts wait longer each time, up to this.
MAX_RESTART_DELAY_SECONDS = 30.0


def default_pool_size() -> int:
    """Warm workers per function unless told: one per CPU, at least 2 (so that a slow request
    leaves room for others) and at most 8. More than the CPUs costs throughput: each worker's
    runtime threads spin after a run (with 4 workers on 2 CPUs, 0.64 ms of CPU per one-row
    request against 0.41 ms with one)."""
    return min(8, max(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class FunctionCode:
    """What a worker runs: a function's code, its handler (`module.function`) and environment."""

    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0


class InvocationError(Exception):
    """An invocation that got no answer from the function's code."""

    def __init__(self, function: str, message: str) -> None:
        super().__init__(message)
        self.function = function
        self.message = message


class WorkerCrashed(InvocationError):
    """The worker died while it ran the invocation; `ending` names the signal or exit status."""

    def __init__(self, function: str, ending: str) -> None:
        super().__init__(
            function, f"the process of function {function} ended ({ending}) during the invocation"
        )
        self.ending = ending


class WorkerTimedOut(InvocationError):
    """The invocation ran past the function's timeout; its worker was killed."""

    def __init__(self, function: str, seconds: float) -> None:
        super().__init__(function, f"function {function} timed out after {seconds:g} seconds")
        self.seconds = seconds


class NoWorker(InvocationError):
    """No worker could take the invocation: none starts (its init fails), or all stayed busy."""


class FunctionError(Exception):
    """The handler raised: Lambda's error payload (`errorMessage`, `errorType`)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(str(payload.get("errorMessage", payload)))
        self.payload = payload


class _Died(Exception):
    pass


class _TimedOut(Exception):
    pass


class _Worker:
    """One worker process; its protocol is a JSON line in and a JSON line out."""

    def __init__(self, code: FunctionCode, on_log: Callable[[str], None]) -> None:
        self.code = code
        self.process = subprocess.Popen(
            [sys.executable, "-m", "maas.local.lambda_worker", str(code.code_dir), code.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_with_maas_importable(code.environment),
            cwd=code.code_dir,
        )
        self._unread = bytearray()
        self.last_lines: deque[str] = deque(maxlen=20)  # of its log, for a failed start
        self._on_log = on_log
        self._log = threading.Thread(target=self._read_log, name=f"log {code.name}", daemon=True)
        self._log.start()

    def wait_ready(self, timeout: float) -> None:
        """Until the handler is imported; raises _Died or _TimedOut."""
        line = self._line(time.monotonic() + timeout)
        if line is None:
            raise _Died
        if json.loads(line) != {"ready": True}:
            raise _Died

    def call(self, event: Any, timeout: float) -> dict[str, Any]:
        """The worker's answer, {"result": ...} or {"error": ...}; raises _Died or _TimedOut."""
        deadline = time.monotonic() + timeout
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(event).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise _Died from None
        line = self._line(deadline)
        if line is None:
            raise _Died
        answer: dict[str, Any] = json.loads(line)
        return answer

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    def ending(self) -> str:
        """How the process ended: the signal's name, or its exit status."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "still running"
        if code < 0:
            try:
                return signal.Signals(-code).name
            except ValueError:
                return f"signal {-code}"
        return f"exit status {code}"

    def _line(self, deadline: float) -> bytes | None:
        """The next line the worker writes, None at its end; raises _TimedOut past `deadline`."""
        assert self.process.stdout is not None
        stream = self.process.stdout.fileno()
        while (end := self._unread.find(b"\n")) < 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _TimedOut
            readable, _, _ = select.select([stream], [], [], remaining)
            if readable:
                chunk = os.read(stream, 1 << 16)
                if not chunk:
                    return None
                self._unread += chunk
        line = bytes(self._unread[:end])
        del self._unread[: end + 1]
        return line

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", errors="replace")
            self.last_lines.append(line.rstrip("\n"))
            try:
                self._on_log(line if line.endswith("\n") else line + "\n")
            except Exception:  # a log sink that fails must not stop the worker's log
                logger.debug("the log sink of %s failed", self.code.name, exc_info=True)


def _with_maas_importable(environment: dict[str, str]) -> dict[str, str]:
    """`environment`, with the maas this process runs on the worker's import path: a worker
    starts in its code's folder, so a maas found from the caller's working directory (a
    checkout run in place) would not be found there."""
    import maas

    root = str(Path(maas.__file__).resolve().parents[1])
    paths = [path for path in environment.get("PYTHONPATH", "").split(os.pathsep) if path]
    return {**environment, "PYTHONPATH": os.pathsep.join([root, *(p for p in paths if p != root)])}


class FunctionPool:
    """Up to `size` warm workers of one function; `invoke` runs an event on an idle one."""

    def __init__(self, code: FunctionCode, *, size: int, on_log: Callable[[str], None]) -> None:
        self.code = code
        self.size = max(1, size)
        self.on_log = on_log
        self._idle: list[_Worker] = []  # the most recently used last: it is the warmest
        self._workers: set[_Worker] = set()
        self._starting = 0
        self._failed_starts = 0
        self._start_error: str | None = None
        self._stopped = False
        self._changed = threading.Condition()

    @property
    def concurrency(self) -> int:
        """As many invocations at once as it may have workers (the gateway reads this)."""
        return self.size

    def warm(self, count: int | None = None) -> None:
        """Start workers now, up to `count` (default: the pool's size), without waiting for them."""
        with self._changed:
            while len(self._workers) + self._starting < min(self.size, count or self.size):
                self._start()

    def invoke(self, event: Any, *, wait: float | None = None) -> Any:
        """What the handler returned for `event`. Raises FunctionError if it raised, WorkerCrashed
        or WorkerTimedOut if its worker died or ran out of time, and NoWorker if no worker
        became free within `wait` seconds (default: the function's timeout) or none starts."""
        worker = self._take(self.code.timeout if wait is None else wait)
        try:
            answer = worker.call(event, self.code.timeout)
        except _Died:
            ending = worker.ending()
            self._lost(worker)
            logger.error("function %s: its worker ended (%s) during an invocation", self.code.name, ending)
            raise WorkerCrashed(self.code.name, ending) from None
        except _TimedOut:
            worker.kill()
            self._lost(worker)
            raise WorkerTimedOut(self.code.name, self.code.timeout) from None
        with self._changed:
            if self._stopped:
                worker.kill()
            else:
                self._idle.append(worker)
            self._changed.notify()
        if "error" in answer:
            raise FunctionError(answer["error"])
        return answer.get("result")

    def stop(self) -> None:
        """Kill every worker; starts still under way end as they finish."""
        with self._changed:
            self._stopped = True
            workers = list(self._workers)
            self._workers.clear()
            self._idle.clear()
            self._changed.notify_all()
        for worker in workers:
            worker.kill()

    def _take(self, wait: float) -> _Worker:
        deadline = time.monotonic() + wait
        with self._changed:
            while True:
                if self._stopped:
                    raise NoWorker(self.code.name, f"function {self.code.name} is stopping")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    self._workers.discard(worker)  # died while idle
                if len(self._workers) + self._starting < self.size:
                    self._start()
                if self._start_error is not None and not self._workers:
                    raise NoWorker(self.code.name, self._start_error)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NoWorker(
                        self.code.name,
                        f"all {self.size} workers of function {self.code.name} stayed busy for {wait:g} s",
                    )
                self._changed.wait(remaining)

    def _lost(self, worker: _Worker) -> None:
        with self._changed:
            self._workers.discard(worker)
            if not self._stopped and len(self._workers) + self._starting < self.size:
                self._start()  # a replacement, warm before the next request needs it
            self._changed.notify_all()

    def _start(self, delay: float = 0.0) -> None:
        """Start one worker in the background (called holding `_changed`)."""
        self._starting += 1
        threading.Thread(
            target=self._start_worker, args=(delay,), name=f"start {self.code.name}", daemon=True
        ).start()

    def _start_worker(self, delay: float) -> None:
        if delay:
            time.sleep(delay)
        worker: _Worker | None = None
        problem = None
        try:
            worker = _Worker(self.code, self.on_log)
            worker.wait_ready(START_TIMEOUT_SECONDS)
        except _Died:
            assert worker is not None
            problem = f"its process ended ({worker.ending()}) before the handler was ready"
        except _TimedOut:
            assert worker is not None
            worker.kill()
            problem = f"its handler was not ready within {START_TIMEOUT_SECONDS:g} s"
        except (OSError, ValueError) as error:
            problem = f"its process could not start ({error})"
        with self._changed:
            self._starting -= 1
            if self._stopped:
                if worker is not None:
                    worker.kill()
            elif problem is None and worker is not None:
                self._workers.add(worker)
                self._idle.insert(0, worker)
                self._failed_starts = 0
                self._start_error = None
            else:
                last = " | ".join(worker.last_lines) if worker is not None else ""
                self._start_error = f"function {self.code.name} cannot start: {problem}" + (
                    f": {last[-500:]}" if last else ""
                )
                logger.error("%s", self._start_error)
                self._failed_starts += 1
                self._start(min(MAX_RESTART_DELAY_SECONDS, 0.5 * 2**self._failed_starts))
            self._changed.notify_all()
