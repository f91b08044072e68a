"""Lambda SnapStart: what the predict function does before its snapshot and after each restore.

On Lambda's Python 3.12+ runtimes with SnapStart, init runs once, the memory is snapshotted,
and every new execution environment is restored from that snapshot. So, before the
snapshot, the models are loaded and warmed (the restored copies answer at once); after each
restore, what the copies would otherwise share or have stale is made fresh:

- every random source is reseeded from the OS (`random`, numpy's global generator, and the
  canary chooser of the source), or every restored copy would draw the same canary arms;
- the alias cache's clock is reset (its read times are from before the snapshot), so
  aliases and versions are read again on the next request;
- AWS clients are rebuilt: their connections died with the snapshot's environment, and the
  restored environment's credentials are its own.

The hooks register with `snapshot_restore_py`, which only Lambda's runtime provides;
elsewhere no snapshot is ever taken and `register` registers nothing.
"""

from __future__ import annotations

import logging
import random
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maas.dataplane import DataPlane

logger = logging.getLogger(__name__)


def register(dataplane: DataPlane, preload: list[str]) -> bool:
    """Register the hooks of `dataplane` (warming `preload`); False where SnapStart cannot run."""
    try:
        import snapshot_restore_py  # type: ignore[import-not-found]  # Lambda's runtime only
    except ImportError:
        return False
    snapshot_restore_py.register_before_snapshot(before_snapshot, dataplane, preload)
    snapshot_restore_py.register_after_restore(after_restore, dataplane)
    return True


def before_snapshot(dataplane: DataPlane, preload: list[str]) -> None:
    """Load and warm `preload` (init did, unless it failed: then once more), so that the
    snapshot holds loaded, warmed runtimes."""
    dataplane.preload(preload)


def after_restore(dataplane: DataPlane) -> None:
    """Reseed every random source, reset the source's caches and rebuild its AWS clients."""
    reseed_random_sources()
    dataplane.source.after_restore()
    logger.info("restored from a SnapStart snapshot: random sources reseeded, caches reset")


def reseed_random_sources() -> None:
    """Seed `random` and, if loaded, numpy's global generator from the OS's entropy."""
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def rebuilt_client(client: Any) -> Any:
    """A new boto3 client for the same service, region and endpoint as `client`."""
    import boto3

    meta = client.meta
    return boto3.client(
        meta.service_model.service_name, region_name=meta.region_name, endpoint_url=meta.endpoint_url
    )


__all__ = ["after_restore", "before_snapshot", "rebuilt_client", "register", "reseed_random_sources"]
