"""What one request may use (memory its runtime allocates, time) and the watchdog that ends
a request at its deadline.

Sources load runtimes without knowing the data plane's limits: the data plane sets them
around each load (`loading_with`), and `load_runtime` hands them to the runtime it loads.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """The budget of one request. None: unbounded.

    `memory_bytes`: what a runtime may allocate while predicting (activations and outputs,
    not the model's weights); `model_bytes`: the largest model file one function may load;
    `deadline_seconds`: how long one prediction may run before it is stopped.
    """

    memory_bytes: int | None = None
    model_bytes: int | None = None
    deadline_seconds: float | None = None

    def memory_text(self) -> str:
        return f"{_mb(self.memory_bytes)} MB one request may allocate (MAAS_REQUEST_MEMORY_MB)"

    def deadline_text(self) -> str:
        return f"{self.deadline_seconds:g} s deadline of a request (MAAS_REQUEST_TIMEOUT_SECONDS)"


NO_LIMITS = Limits()

_loading: ContextVar[Limits] = ContextVar("maas_loading_limits", default=NO_LIMITS)


@contextmanager
def loading_with(limits: Limits) -> Iterator[None]:
    """Runtimes loaded inside this block (by any source) get `limits`."""
    token = _loading.set(limits)
    try:
        yield
    finally:
        _loading.reset(token)


def loading_limits() -> Limits:
    """The limits of the load in progress on this thread (`NO_LIMITS` outside `loading_with`)."""
    return _loading.get()


def _mb(size: int | None) -> str:
    return "unbounded" if size is None else f"{size / MB:g}"


class Watch:
    """One watched call: `fired` once its deadline passed and `cancel` was called."""

    __slots__ = ("cancel", "done", "due", "fired")

    def __init__(self, due: float, cancel: Callable[[], None]) -> None:
        self.due = due
        self.cancel = cancel
        self.done = False
        self.fired = False


class Watchdog:
    """One daemon thread that cancels each watched call still running at its deadline.

    One thread for every request rather than a `threading.Timer` each: starting a thread
    costs more than a small model's whole prediction.
    """

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, seconds: float | None, cancel: Callable[[], None]) -> Iterator[Watch]:
        """Call `cancel` (from the watchdog's thread) if the block still runs after `seconds`."""
        item = Watch(time.monotonic() + seconds if seconds is not None else float("inf"), cancel)
        if seconds is not None:
            with self._changed:
                self._start()
                earliest = not self._due or item.due < self._due[0][0]
                heapq.heappush(self._due, (item.due, next(self._order), item))
                if earliest:
                    self._changed.notify()
        try:
            yield item
        finally:
            item.done = True  # dropped when it comes due; removing it now would cost a heap search

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="maas-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._due:
                    self._changed.wait()
                due, _, item = self._due[0]
                wait = due - time.monotonic()
                if wait > 0 and not item.done:
                    self._changed.wait(wait)
                    continue
                heapq.heappop(self._due)
                if item.done:
                    continue
                item.fired = True
            item.cancel()


WATCHDOG = Watchdog()

__all__ = ["MB", "NO_LIMITS", "WATCHDOG", "Limits", "Watch", "Watchdog", "loading_limits", "loading_with"]
