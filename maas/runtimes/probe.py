"""An untrusted model file loaded in a child process, to read its signature without risking
the caller: registration learns what a file takes and returns by loading it, and a runtime
that crashes on a damaged file (a segfault in native code) then ends the child, not the
registry.

Children are forked from a forkserver that imported the runtimes once, so a file costs a
fork and its own load (tens of milliseconds), not the start of an interpreter.
"""

from __future__ import annotations

import importlib
import os
import signal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.errors import ArtifactError, MaasError, without_paths
from maas.runtimes import RUNTIMES, runtime_target

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from maas.runtimes.base import Signature

# Within API Gateway's 30 s for the registration request that waits for it.
LOAD_TIMEOUT_SECONDS = 20.0


def signature_in_child(path: Path, framework: str, *, timeout: float = LOAD_TIMEOUT_SECONDS) -> Signature:
    """The signature of the model file at `path`, loaded by its framework's runtime in a child
    process. Raises ArtifactError with the runtime's refusal, naming the signal if the runtime
    crashed, or when loading takes longer than `timeout` seconds."""
    target = runtime_target(framework)
    value, timed_out, exitcode = _answer_of_child(_load, (target, str(path)), "signature", timeout)
    if value is not None:
        return value  # type: ignore[no-any-return]
    if timed_out:
        raise ArtifactError(f"'{path.name}' did not load within {timeout:g} s")
    raise ArtifactError(f"the {framework} runtime crashed loading '{path.name}' ({_ending(exitcode)})")


def _answer_of_child(
    work: Any, args: tuple[Any, ...], expected: str, timeout: float
) -> tuple[Any, bool, int | None]:
    """Run `work(*args, pipe)` in a child and read its one answer `(kind, value)`: the value of
    kind `expected` (an answer of any other kind is the child's refusal, raised as
    ArtifactError), else None with whether it timed out (it is then killed) and its exit code."""
    context = _context()
    answers, child_end = context.Pipe(duplex=False)
    child = context.Process(target=work, args=(*args, child_end), daemon=True)
    child.start()
    child_end.close()  # so that a child's death reads as the end of the pipe
    try:
        answer = answers.recv() if answers.poll(timeout) else None
        timed_out = answer is None and child.is_alive()
    except EOFError:  # it died before answering
        answer, timed_out = None, False
    finally:
        answers.close()
    if timed_out:
        child.kill()
    child.join(timeout=10)
    if answer is None:
        return None, timed_out, child.exitcode
    kind, value = answer
    if kind != expected:
        raise ArtifactError(value)
    return value, False, child.exitcode


def _ending(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit status {exitcode}"


def _load(target: str, path: str, answers: Connection) -> None:
    """In the child: load, send what was learned, and leave without the runtime's teardown (a
    damaged model may crash it too, and the answer is already on its way)."""
    module_name, class_name = target.split(":")
    answer: tuple[str, Any]
    try:
        runtime = getattr(importlib.import_module(module_name), class_name).load(Path(path))
        answer = ("signature", runtime.signature)
    except ArtifactError as error:
        answer = ("refused", error.message)
    except MemoryError:
        answer = ("refused", f"'{Path(path).name}' needs more memory to load than there is")
    except Exception as error:  # any other refusal of a runtime is still only a refusal
        answer = ("refused", f"cannot load '{Path(path).name}': {without_paths(str(error))}")
    answers.send(answer)
    answers.close()
    os._exit(0)


@cache
def _context() -> Any:
    """A forkserver that has imported every runtime (spawn where there is no forkserver)."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    modules = [target.split(":")[0] for _, target in RUNTIMES.values()]
    context.set_forkserver_preload([*modules, "tflite_runtime.interpreter", "ai_edge_litert.interpreter"])
    return context


def predict_in_child(
    path: Path, inputs: dict[str, Any], *, timeout: float = LOAD_TIMEOUT_SECONDS
) -> tuple[Signature, dict[str, Any]]:
    """Load the model file at `path` with its runtime in a child process and predict `inputs`
    (arrays by input name): its signature and outputs, as `maas` would serve them. The child
    has imported only the runtimes: a converter's framework loaded in the caller (TensorFlow
    holds a TFLite of its own that clashes with tflite-runtime's) cannot change the answer.
    Raises ArtifactError as `signature_in_child` does, and for a prediction that fails."""
    from maas.runtimes import framework_of

    target = runtime_target(framework_of(path))
    value, timed_out, exitcode = _answer_of_child(_predict, (target, str(path), inputs), "outputs", timeout)
    if value is not None:
        return value  # type: ignore[no-any-return]
    if timed_out:
        raise ArtifactError(f"'{path.name}' did not load and predict within {timeout:g} s")
    raise ArtifactError(f"the runtime crashed running '{path.name}' ({_ending(exitcode)})")


def _predict(target: str, path: str, inputs: dict[str, Any], answers: Connection) -> None:
    """In the child: load, predict, send the signature and outputs, and leave as `_load` does."""
    module_name, class_name = target.split(":")
    answer: tuple[str, Any]
    try:
        runtime = getattr(importlib.import_module(module_name), class_name).load(Path(path))
        answer = ("outputs", (runtime.signature, runtime.predict(inputs)))
    except MaasError as error:
        answer = ("refused", error.message)
    except Exception as error:
        answer = ("refused", f"cannot run '{Path(path).name}': {without_paths(str(error))}")
    answers.send(answer)
    answers.close()
    os._exit(0)
