"""Least-recently-used caches under a byte budget: loaded runtimes in memory (the data
plane's) and downloaded artifacts on disk (the registry source's).

An entry in use (pinned) is never evicted: a request keeps the model it runs, and a load
keeps the file it reads. While pinned entries alone pass the budget, the cache stays over
it until they are released, rather than refuse the request.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from maas.errors import ArtifactError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

logger = logging.getLogger(__name__)

MB = 1 << 20
V = TypeVar("V")


@dataclass
class _Entry(Generic[V]):
    value: V
    size: int
    label: str
    pins: int = 0


class LruBudget(Generic[V]):
    """Values by key, least recently used first, evicted while their sizes pass `budget_bytes`
    (None: never). `on_evict(key, value)` runs for each value evicted, outside the lock."""

    def __init__(self, budget_bytes: int | None, *, on_evict: Callable[[str, V], None] | None = None) -> None:
        self.budget_bytes = budget_bytes
        self.on_evict = on_evict
        self._entries: OrderedDict[str, _Entry[V]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(entry.size for entry in self._entries.values())

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def checkout(self, key: str) -> V | None:
        """The value of `key`, now the most recently used and pinned until `checkin`; None if absent."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            entry.pins += 1
            return entry.value

    def checkin(self, key: str) -> None:
        """Unpin `key` (once per `checkout`), then evict what the budget no longer holds."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.pins -= 1
        self._evict()

    def add(self, key: str, value: V, size: int, *, label: str, pinned: bool = False) -> None:
        """Keep `value` as the most recently used (pinned until `checkin` if `pinned`), then evict
        least recently used unpinned values until the rest fit the budget."""
        with self._lock:
            held = self._entries.get(key)
            pins = (held.pins if held is not None else 0) + (1 if pinned else 0)
            self._entries[key] = _Entry(value, size, label, pins=pins)
            self._entries.move_to_end(key)
        self._evict()

    def make_room(self, size: int) -> None:
        """Evict least recently used unpinned values until `size` more bytes fit the budget."""
        self._evict(room=size)

    def _evict(self, room: int = 0) -> None:
        evicted: list[tuple[str, _Entry[V]]] = []
        with self._lock:
            if self.budget_bytes is None:
                return
            total = sum(entry.size for entry in self._entries.values()) + room
            for key, entry in list(self._entries.items()):
                if total <= self.budget_bytes:
                    break
                if entry.pins > 0:
                    continue
                del self._entries[key]
                total -= entry.size
                evicted.append((key, entry))
        for key, entry in evicted:
            logger.info(
                "evicted %s (%.1f MB), least recently used, to stay within %.0f MB",
                entry.label, entry.size / MB, self.budget_bytes / MB,
            )  # fmt: skip
            if self.on_evict is not None:
                self.on_evict(key, entry.value)


# A download left by a process that died mid-way; no live download runs longer than a
# Lambda invocation can (15 minutes).
STALE_DOWNLOAD_SECONDS = 15 * 60


class DiskCache:
    """Artifacts downloaded under `root` as `<root>/<sha256>/<file>`, least recently used
    deleted first to keep them within `budget_bytes`.

    Files already under `root` (kept by an earlier process of the same Lambda environment,
    whose /tmp outlives it) are counted at start, oldest first.
    """

    def __init__(self, root: Path, budget_bytes: int | None) -> None:
        self.root = root
        self.budget_bytes = budget_bytes
        self._files: LruBudget[Path] = LruBudget(budget_bytes, on_evict=_delete_artifact)
        self._adopt_existing()

    @contextmanager
    def holding(self, sha256: str, size: int, fetch: Callable[[], Path]) -> Iterator[Path]:
        """The file of `sha256` (`size` bytes), fetched with `fetch()` after room is made for it
        if it is not here yet; it is not deleted before the block ends. Raises ArtifactError if
        `size` alone is more than the budget."""
        path = self._files.checkout(sha256)
        if path is None:
            if self.budget_bytes is not None and size > self.budget_bytes:
                raise ArtifactError(
                    f"the artifact is {size / MB:.1f} MB, more than the {self.budget_bytes / MB:g} MB "
                    "of disk this function keeps for artifacts (MAAS_CACHE_DISK_MB)"
                )
            self._files.make_room(size)
            path = fetch()
            self._files.add(sha256, path, size, label=f"artifact {sha256[:12]}", pinned=True)
        try:
            if not path.is_file():  # deleted behind the cache's back: fetch it again
                path = fetch()
            yield path
        finally:
            self._files.checkin(sha256)

    def __contains__(self, sha256: str) -> bool:
        return sha256 in self._files

    def _adopt_existing(self) -> None:
        if not self.root.is_dir():
            return
        found = []
        now = time.time()
        for folder in self.root.iterdir():
            for file in folder.iterdir() if folder.is_dir() else ():
                stat = file.stat()
                if file.name.startswith(".download-"):
                    if now - stat.st_mtime > STALE_DOWNLOAD_SECONDS:
                        file.unlink(missing_ok=True)
                    continue
                found.append((stat.st_mtime, folder.name, file, stat.st_size))
        for _, sha256, file, size in sorted(found):
            self._files.add(sha256, file, size, label=f"artifact {sha256[:12]}")


def _delete_artifact(_: str, path: Path) -> None:
    shutil.rmtree(path.parent, ignore_errors=True)


__all__ = ["DiskCache", "LruBudget"]
