"""moto's S3, as S3 sends its event notifications: naming the upload, once per upload."""

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


def _s3_multipart_uploads_notify_once() -> None:
    """Gap: moto 5.2.5 completes a multipart upload through its own put_object, which sends an
    `ObjectCreated:Put` notification before the `ObjectCreated:CompleteMultipartUpload` one;
    AWS sends only the latter. Every batch file uploaded in parts (boto3 does above 8 MB) ran
    twice, each notification with its own sequencer. The Put one is dropped."""
    import threading

    from moto.s3 import notifications
    from moto.s3.models import S3Backend

    completing = threading.local()
    complete, send_event = S3Backend.complete_multipart_upload, notifications.send_event

    def complete_multipart_upload(self: Any, *args: Any, **kwargs: Any) -> Any:
        completing.active = True
        try:
            return complete(self, *args, **kwargs)
        finally:
            completing.active = False

    def send_once(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        put = notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT
        if getattr(completing, "active", False) and event_name == put:
            return
        send_event(account_id, event_name, bucket, key)

    if replace(S3Backend, "complete_multipart_upload", complete_multipart_upload):
        replace(notifications, "send_event", send_once)


def install() -> None:
    """Every extension of this service (idempotent)."""
    _s3_notifications_name_the_upload()
    _s3_multipart_uploads_notify_once()
