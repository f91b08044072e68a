"""Worker pools, the local Lambda containers: invocations overlap up to the pool's size, and a
worker that crashes, hangs or cannot start fails only its own invocation and is replaced."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from maas.local.workers import (
    FunctionCode,
    FunctionError,
    FunctionPool,
    NoWorker,
    WorkerCrashed,
    WorkerTimedOut,
)

HANDLER = """
import ctypes, os, sys, time

print("started", os.getpid())

def handler(event, context):
    if event.get("crash"):
        ctypes.string_at(0)  # a read of address 0 in native code, as a runtime misreading a model does
    if event.get("exit"):
        os._exit(3)
    if event.get("raise"):
        raise ValueError("asked to fail")
    time.sleep(event.get("sleep", 0))
    print('{"_aws": "an EMF-looking line"}')
    return {"pid": os.getpid(), "function": context.function_name, "echo": event.get("echo")}
"""


@pytest.fixture
def code(tmp_path: Path) -> FunctionCode:
    (tmp_path / "app.py").write_text(HANDLER)
    environment = {**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "test-function"}
    return FunctionCode("test-function", tmp_path, "app.handler", environment, timeout=10)


@pytest.fixture
def logged() -> list[str]:
    return []


@pytest.fixture
def pool(code: FunctionCode, logged: list[str]) -> Iterator[FunctionPool]:
    pool = FunctionPool(code, size=3, on_log=logged.append)
    try:
        yield pool
    finally:
        pool.stop()


def test_an_invocation_answers_from_a_warm_worker_that_serves_the_next_one_too(
    pool: FunctionPool, logged: list[str]
) -> None:
    first = pool.invoke({"echo": "hello"})
    assert first["echo"] == "hello" and first["function"] == "test-function"
    assert pool.invoke({})["pid"] == first["pid"]  # one after another: the same warm process
    time.sleep(0.2)
    assert f"started {first['pid']}\n" in logged  # the handler's output is the function's log
    assert '{"_aws": "an EMF-looking line"}\n' in logged


def test_overlapping_invocations_run_at_once_on_workers_of_their_own(pool: FunctionPool) -> None:
    pool.warm()
    pool.invoke({})  # the first is ready
    time.sleep(2)  # ... and the others
    answers: list[dict] = []
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: answers.append(pool.invoke({"sleep": 1.0}))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 2.5  # not 3 s one after another
    assert len({answer["pid"] for answer in answers}) == 3


def test_a_worker_that_crashes_fails_its_invocation_naming_the_signal_and_is_replaced(
    pool: FunctionPool,
) -> None:
    before = pool.invoke({})["pid"]
    with pytest.raises(WorkerCrashed) as crash:
        pool.invoke({"crash": True})
    assert crash.value.ending == "SIGSEGV"
    assert "test-function" in crash.value.message
    after = pool.invoke({})["pid"]
    assert after != before
    with pytest.raises(WorkerCrashed, match=r"ended \(exit status 3\)"):
        pool.invoke({"exit": True})
    assert pool.invoke({})["pid"] not in (before, after)


def test_an_invocation_past_the_timeout_kills_its_worker_as_lambda_does(
    code: FunctionCode, logged: list[str]
) -> None:
    short = FunctionCode(code.name, code.code_dir, code.handler, code.environment, timeout=1)
    pool = FunctionPool(short, size=1, on_log=logged.append)
    try:
        stuck = pool.invoke({})["pid"]
        started = time.monotonic()
        with pytest.raises(WorkerTimedOut, match="timed out after 1 seconds"):
            pool.invoke({"sleep": 30})
        assert time.monotonic() - started < 5
        assert pool.invoke({})["pid"] != stuck
    finally:
        pool.stop()


def test_a_handler_that_raises_fails_its_invocation_and_its_worker_lives_on(pool: FunctionPool) -> None:
    pid = pool.invoke({})["pid"]
    with pytest.raises(FunctionError) as failure:
        pool.invoke({"raise": True})
    assert failure.value.payload == {"errorMessage": "asked to fail", "errorType": "ValueError"}
    assert pool.invoke({})["pid"] == pid


def test_a_function_that_cannot_start_says_why_at_once(tmp_path: Path, logged: list[str]) -> None:
    (tmp_path / "app.py").write_text("raise ImportError('no such runtime here')\n")
    pool = FunctionPool(
        FunctionCode("broken", tmp_path, "app.handler", dict(os.environ)), size=2, on_log=logged.append
    )
    try:
        started = time.monotonic()
        with pytest.raises(
            NoWorker,
            match=r"function broken cannot start: its process ended \(exit status 1\).*no such runtime here",
        ):
            pool.invoke({})
        assert time.monotonic() - started < 10
    finally:
        pool.stop()


def test_all_workers_busy_past_the_wait_is_no_worker_rather_than_a_hang(
    code: FunctionCode, logged: list[str]
) -> None:
    pool = FunctionPool(code, size=1, on_log=logged.append)
    try:
        pool.invoke({})
        busy = threading.Thread(target=pool.invoke, args=({"sleep": 3},))
        busy.start()
        time.sleep(0.5)
        with pytest.raises(NoWorker, match=r"all 1 workers of function test-function stayed busy for 0\.5 s"):
            pool.invoke({}, wait=0.5)
        busy.join()
    finally:
        pool.stop()


def test_stopping_the_pool_ends_every_worker(code: FunctionCode, logged: list[str]) -> None:
    pool = FunctionPool(code, size=2, on_log=logged.append)
    pool.warm()
    pid = pool.invoke({})["pid"]
    pool.stop()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, it was read
        return False
