"""Putting an extension in place of what moto has, once."""

from __future__ import annotations

from typing import Any


def replace(owner: Any, name: str, replacement: Any) -> bool:
    """Put `replacement` in place of `owner.name` unless an earlier install did; whether it did
    now. Extensions capture the original before they call this."""
    if getattr(getattr(owner, name), "maas_gap", False):
        return False
    replacement.maas_gap = True
    setattr(owner, name, replacement)
    return True
