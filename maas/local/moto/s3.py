"""moto's S3, as S3 sends its event notifications."""

from __future__ import annotations

import time
from typing import Any

from maas.local.moto.patching import replace


def _s3_notifications_name_the_upload() -> None:
    """Gap: moto 5.2.5's S3 event notifications carry neither the object's `versionId` nor a
    `sequencer`, which AWS's always do; without them two uploads of the same bytes look like
    one redelivered notification to batch's idempotency. Both are added, the sequencer
    increasing with each event as S3's does for a key."""
    import itertools

    from moto.s3 import notifications

    original = notifications._get_s3_event
    events = itertools.count()

    def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        for record in event["Records"]:
            obj = record["s3"]["object"]
            if key.version_id and key.version_id != "null":
                obj["versionId"] = key.version_id
            obj["sequencer"] = f"{time.time_ns():016X}{next(events) % 65536:04X}"
        return event

    replace(notifications, "_get_s3_event", s3_event)


def install() -> None:
    """Every extension of this service (idempotent)."""
    _s3_notifications_name_the_upload()
