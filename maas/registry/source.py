"""The data plane's model source over the registry: aliases, canary weights, verified artifacts."""

from __future__ import annotations

import hashlib
import random
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from maas.cache import DiskCache
from maas.errors import ModelNotFound
from maas.names import ModelRef, check_name, is_version_number
from maas.registry.models import Target, VersionStatus
from maas.registry.service import MAX_PAGE
from maas.runtimes import load_runtime
from maas.sources import ModelSource

if TYPE_CHECKING:
    from collections.abc import Callable

    from maas.registry.models import Alias, ModelVersion
    from maas.registry.service import Registry
    from maas.runtimes import Runtime


T = TypeVar("T")


class RegistrySource(ModelSource):
    """Serves `/v2/models/<name>` from the `default_alias` of `name`, and
    `/versions/<v>` from version v (a number) or from alias v (a name).

    Aliases and version records are re-read after `ttl` seconds, so a promotion
    reaches a warm function without a redeploy. A canary alias picks a version per
    request by weight. Artifacts are downloaded once to `cache_dir` and their sha256
    is checked before they are loaded; the least recently used are deleted to keep them
    within `cache_disk_bytes` (None: no limit).
    """

    def __init__(
        self,
        registry: Registry,
        *,
        default_alias: str = "prod",
        ttl: float = 30.0,
        cache_dir: Path | None = None,
        cache_disk_bytes: int | None = None,
        chooser: random.Random | None = None,
        endpoint_prefix: str = "maas",
        sagemaker_client: Any = None,
    ) -> None:
        self.registry = registry
        self.default_alias = default_alias
        self.ttl = ttl
        self.cache_dir = cache_dir or Path(tempfile.gettempdir()) / "maas-artifacts"
        self.artifact_cache = DiskCache(self.cache_dir, cache_disk_bytes)
        self._chooser = chooser or random.Random()
        self.endpoint_prefix = endpoint_prefix
        self._sagemaker_client = sagemaker_client
        # (value, monotonic time it was read)
        self._aliases: dict[tuple[str, str], tuple[Alias, float]] = {}
        self._records: dict[tuple[str, int], tuple[ModelVersion, float]] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str, version: str | None = None, *, draw_key: str | None = None) -> ModelRef:
        check_name("model name", name)
        if version is not None and is_version_number(version):
            number = int(version)
        else:
            alias = self._alias(name, check_name("alias", version or self.default_alias))
            number = self._pick(alias, draw_key)
        record = self._record(name, number)
        if record.status is not VersionStatus.ACTIVE:
            raise ModelNotFound(name, str(number), why="is retired and no longer served")
        return ModelRef(
            name=name,
            version=str(number),
            framework=record.framework,
            cache_key=record.sha256,
            target=record.target.value,
        )

    def models(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:  # every page; a head that cannot be read is left out (and logged) by the store
            page = self.registry.models(limit=MAX_PAGE, token=token)
            names.extend(head.name for head in page.items)
            token = page.next_token
            if token is None:
                return sorted(names)

    def versions(self, name: str) -> list[str]:
        servable: list[str] = []
        token: str | None = None
        while True:  # every page: the version an alias serves may be the 101st
            page = self.registry.versions(name, limit=MAX_PAGE, token=token)
            servable.extend(str(v.version) for v in page.items if v.status is VersionStatus.ACTIVE)
            token = page.next_token
            if token is None:
                return servable

    def load(self, ref: ModelRef) -> Runtime:
        record = self._record(ref.name, int(ref.version))
        if record.target is Target.SAGEMAKER:
            return self._endpoint_runtime(record)
        fetch = partial(self.registry.artifacts.fetch, record.artifact_key, record.sha256, self.cache_dir)
        with self.artifact_cache.holding(record.sha256, record.size, fetch) as path:
            return load_runtime(path, record.framework)

    def ready(self) -> bool:
        return True

    def after_restore(self) -> None:
        """After a SnapStart restore: a chooser of its own per restored copy (or every copy draws
        the same canary arms), aliases and versions read again (their read times are on the
        snapshot's clock), and new AWS clients (the snapshot's connections are gone)."""
        from maas.snapstart import rebuilt_client

        with self._lock:
            self._chooser = random.Random()
            self._aliases.clear()
            self._records.clear()
        for holder in (self.registry.store, self.registry.artifacts):
            client = getattr(holder, "client", None)
            if client is not None and hasattr(client, "meta"):
                holder.client = rebuilt_client(client)  # type: ignore[union-attr]
        if self._sagemaker_client is not None:
            self._sagemaker_client = rebuilt_client(self._sagemaker_client)

    def _endpoint_runtime(self, record: ModelVersion) -> Runtime:
        # The signature comes from the registry, so metadata answers without calling the endpoint.
        from maas.registry.service import runtime_signature
        from maas.runtimes.sagemaker import SageMakerRuntime, runtime_client
        from maas.runtimes.sagemaker_names import endpoint_name, variant_name

        if self._sagemaker_client is None:
            self._sagemaker_client = runtime_client()
        return SageMakerRuntime(
            endpoint=endpoint_name(self.endpoint_prefix, record.name),
            variant=variant_name(record.version),
            signature=runtime_signature(record.signature),
            client=self._sagemaker_client,
        )

    def _alias(self, name: str, alias: str) -> Alias:
        found = self._fresh(self._aliases, (name, alias), lambda: self.registry.store.get_alias(name, alias))
        if found is None:
            if self.registry.store.head(name) is None:
                raise ModelNotFound(name)
            raise ModelNotFound(name, alias=alias)
        return found

    def _pick(self, alias: Alias, draw_key: str | None = None) -> int:
        if len(alias.weights) == 1:
            return next(iter(alias.weights))
        versions = sorted(alias.weights)
        weights = [alias.weights[v] for v in versions]
        if draw_key is not None:
            # A draw seeded by the key: the same key lands on the same arm of this canary.
            seed = int.from_bytes(hashlib.sha256(draw_key.encode()).digest()[:8], "big")
            return random.Random(seed).choices(versions, weights=weights)[0]
        with self._lock:
            return self._chooser.choices(versions, weights=weights)[0]

    def _record(self, name: str, version: int) -> ModelVersion:
        record = self._fresh(
            self._records, (name, version), lambda: self.registry.store.get_version(name, version)
        )
        if record is None:
            raise ModelNotFound(name, str(version))
        return record

    def _fresh(self, cache: dict[Any, tuple[Any, float]], key: Any, read: Callable[[], T | None]) -> T | None:
        """`cache[key]` if it was read less than `ttl` seconds ago, else `read()` (cached if found)."""
        now = time.monotonic()
        cached = cache.get(key)
        if cached is not None and now - cached[1] < self.ttl:
            return cast("T", cached[0])
        value = read()
        if value is not None:
            with self._lock:
                cache[key] = (value, now)
        return value
