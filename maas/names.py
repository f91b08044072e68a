"""Names shared by serving and the registry: what a model name or version may be, and the
reference to one loadable version. A leaf: it imports nothing of maas but its errors, so the
data plane, the sources and the registry can all use it without importing each other."""

from __future__ import annotations

import re
from dataclasses import dataclass

from maas.errors import InvalidInput

# Model names and versions are path segments and S3 key parts: no separators, no dot-dot,
# ASCII only (so that case-folding is plain and no two spellings look alike). Matched whole
# with fullmatch: `$` would also match before a trailing newline.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")


@dataclass(frozen=True)
class ModelRef:
    """One concrete, loadable model version. `cache_key` changes whenever the artifact does."""

    name: str
    version: str
    framework: str
    cache_key: str
    target: str = "lambda"


def is_version_number(text: str) -> bool:
    """True for ASCII digits only: `str.isdigit` also accepts '²', which `int` refuses."""
    return text.isascii() and text.isdigit()


def is_safe_name(value: str) -> bool:
    """Whether `value` can be a model name or version (a path segment, an S3 key part)."""
    return _SAFE_NAME.fullmatch(value) is not None and ".." not in value


def check_name(kind: str, value: str) -> str:
    """`value` if it is a safe model name or version, else InvalidInput naming the problem."""
    if not is_safe_name(value):
        raise InvalidInput(
            f"{kind} {value!r} is not valid: use ASCII letters, digits, '.', '_' and '-' "
            "(at most 128, no '..')"
        )
    return value


__all__ = ["ModelRef", "check_name", "is_safe_name", "is_version_number"]
