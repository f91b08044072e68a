"""TensorFlow conversions in a process of their own.

TensorFlow carries a TFLite of its own, and once it is loaded in a process, tflite-runtime's
interpreter fails there on every model ("vector::reserve"): the same process could convert a
Keras model and never serve a TFLite file again. So a conversion that loads TensorFlow runs in
a child process (spawned: a fresh interpreter), and the caller's process never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.errors import MaasError

if TYPE_CHECKING:
    from collections.abc import Callable


def uses_tensorflow(source: str | Path) -> bool:
    """Whether converting `source` loads TensorFlow (a .keras file or a SavedModel directory)."""
    path = Path(source)
    return path.suffix.lower() == ".keras" or (path.is_dir() and (path / "saved_model.pb").is_file())


def in_own_process(function: Callable[..., Any], *arguments: Any) -> Any:
    """`function(*arguments)` in a spawned child; its result, or the MaasError it raised. Raises
    MaasError naming the exit status if the child died without answering (a crash)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    answers, child_end = context.Pipe(duplex=False)
    child = context.Process(target=_run, args=(function, arguments, child_end))
    child.start()
    child_end.close()
    try:
        kind, value = answers.recv()
    except EOFError:
        child.join()
        raise MaasError(
            f"the conversion's process ended without an answer (exit status {child.exitcode})"
        ) from None
    finally:
        answers.close()
    child.join()
    if kind == "error":
        raise value
    if kind == "bug":
        raise RuntimeError(f"the conversion failed:\n{value}")
    return value


def _run(function: Callable[..., Any], arguments: tuple[Any, ...], answers: Any) -> None:
    import traceback

    try:
        answer: tuple[str, Any] = ("result", function(*arguments))
    except MaasError as error:
        answer = ("error", error)
    except Exception:  # a bug: its traceback goes back to the caller, who raises it
        answer = ("bug", traceback.format_exc())
    answers.send(answer)
    answers.close()
