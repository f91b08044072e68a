"""The names a SageMaker deployment shares between the stack that creates its endpoints, the
deployer that moves them and the runtime that calls them: endpoints, variants and tags."""

from __future__ import annotations

import re

# The alias an endpoint follows and the model it serves are tags on it, set by the stack.
ALIAS_TAG = "maas:alias"
MODEL_TAG = "maas:model"
MAX_NAME = 63


def endpoint_name(prefix: str, model: str) -> str:
    """The endpoint of `model`: SageMaker names allow letters, digits and '-' only, 63 at most."""
    return re.sub(r"[^A-Za-z0-9]+", "-", f"{prefix}-{model}").strip("-")[:MAX_NAME].rstrip("-")


def variant_name(version: int) -> str:
    return f"v{version}"


def version_of_variant(variant: str) -> int | None:
    return int(variant[1:]) if re.fullmatch(r"v\d+", variant) else None
