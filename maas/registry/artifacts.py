"""Model artifacts in S3, stored once under their sha256 and verified whenever they are read."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from maas.errors import ArtifactError, InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable

CHUNK = 1 << 20
# uploads/<model>/<32 hex digits>/<file name>, as presigned_upload issues them.
_UPLOAD_KEY = re.compile(r"uploads/(?P<model>[^/]+)/[0-9a-f]{32}/(?P<file>[^/]+)")
# Most file systems hold names of at most 255 bytes (and S3 keys 1,024).
MAX_FILENAME_BYTES = 255


def check_upload_filename(filename: str) -> str:
    """`filename` if it can be a file's name here, else InvalidInput naming the problem."""
    if not filename or filename in (".", "..") or "/" in filename or "\\" in filename:
        raise InvalidInput(f"upload file name {filename!r} must be a plain file name")
    if any(unicodedata.category(char)[0] == "C" for char in filename):
        raise InvalidInput(f"upload file name {filename!r} must not hold a control character")
    if len(filename.encode("utf-8", "surrogatepass")) > MAX_FILENAME_BYTES:
        raise InvalidInput(f"upload file name must be at most {MAX_FILENAME_BYTES} bytes long")
    return filename


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore:
    """Content-addressed artifacts: `artifacts/<model>/<sha256>/model<suffix>` in `bucket`.

    The model name leads the key so that each prediction function's IAM policy can be
    limited to its own model's artifacts.
    """

    def __init__(self, bucket: str, client: Any = None) -> None:
        import boto3

        self.bucket = bucket
        self.client = client or boto3.client("s3")

    @staticmethod
    def key_for(name: str, sha256: str, suffix: str) -> str:
        return f"artifacts/{name}/{sha256}/model{suffix}"

    def put_file(
        self, name: str, path: Path, progress: Callable[[int], None] | None = None
    ) -> tuple[str, str, int]:
        """Upload `path` as an artifact of model `name` unless the same bytes are already
        stored for it; returns (key, sha256, size)."""
        sha256 = sha256_of(path)
        key = self.key_for(name, sha256, path.suffix)
        size = path.stat().st_size
        if not self.exists(key):
            self.client.upload_file(
                str(path), self.bucket, key, ExtraArgs={"Metadata": {"sha256": sha256}}, Callback=progress
            )
        elif progress is not None:
            progress(size)
        return key, sha256, size

    def presigned_upload(self, name: str, filename: str, expires: int = 3600) -> tuple[str, str]:
        """A URL a client can PUT a file to, and the key it will land under: a key that only
        model `name` can register. Raises InvalidInput if `filename` is not a plain file name."""
        check_upload_filename(filename)
        key = f"uploads/{name}/{uuid.uuid4().hex}/{filename}"
        url = self.client.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
        )
        return url, key

    def download_upload(self, name: str, key: str, directory: Path, *, max_bytes: int | None = None) -> Path:
        """Fetch a file uploaded (by presigned URL) for model `name` to `directory`, keeping its
        file name. Raises InvalidInput if the key is not one issued for `name`, has no file, or
        holds more than `max_bytes`: a presigned PUT cannot limit what is sent, so the size is
        checked here, and the download pinned to the checked object's ETag in case it is replaced."""
        issued = _UPLOAD_KEY.fullmatch(key)
        if issued is None or issued["model"] in (".", ".."):
            raise InvalidInput(f"'{key}' is not an upload key this registry issued")
        if issued["model"] != name:
            raise InvalidInput(f"upload key '{key}' was not issued for model '{name}'")
        filename = check_upload_filename(issued["file"])
        uploaded = self._listed(key)
        if uploaded is None:
            raise InvalidInput(f"no uploaded file at '{key}': PUT the file to its upload_url first")
        if max_bytes is not None and uploaded["Size"] > max_bytes:
            self.delete_upload(key)  # it can never be registered through the API: do not keep it
            raise InvalidInput(
                f"the upload at '{key}' is {uploaded['Size']} bytes, over the registry API's limit of "
                f"{max_bytes} bytes (registry.max_upload_mb in maas.yaml); register larger artifacts with "
                "`maas models register`, which writes to S3 and the registry table directly"
            )
        target = directory / filename
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key, IfMatch=uploaded["ETag"])["Body"]
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in ("412", "PreconditionFailed"):
                raise InvalidInput(
                    f"the upload at '{key}' changed while it was being registered; try again"
                ) from None
            raise InvalidInput(f"no uploaded file at '{key}': {code}") from None
        try:
            with body, target.open("wb") as stream:
                # No more than was checked, whatever the connection delivers.
                while (chunk := body.read(CHUNK)) and stream.tell() < uploaded["Size"]:
                    stream.write(chunk[: uploaded["Size"] - stream.tell()])
        except BotoCoreError as error:
            raise ArtifactError(f"reading the upload at '{key}' failed ({error}); try again") from None
        return target

    def delete_upload(self, key: str) -> None:
        """Remove an upload once its bytes live at their content address."""
        if key.startswith("uploads/"):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def fetch(self, key: str, sha256: str, cache_dir: Path) -> Path:
        """The artifact as a local file, downloaded once and verified against `sha256`.

        Raises ArtifactError if it is missing or its bytes do not match.
        """
        target = cache_dir / sha256 / key.rsplit("/", 1)[-1]
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, scratch = tempfile.mkstemp(dir=target.parent, prefix=".download-")
        os.close(handle)
        try:
            try:
                self.client.download_file(self.bucket, key, scratch)
            except ClientError as error:
                raise ArtifactError(f"artifact s3://{self.bucket}/{key} cannot be read: {error}") from None
            actual = sha256_of(Path(scratch))
            if actual != sha256:
                raise ArtifactError(
                    f"artifact s3://{self.bucket}/{key} has sha256 {actual}, but the registry recorded {sha256}; "
                    "it was changed after registration and will not be loaded"
                )
            Path(scratch).replace(target)
        finally:
            Path(scratch).unlink(missing_ok=True)
        return target

    def exists(self, key: str) -> bool:
        return self._listed(key) is not None

    def _listed(self, key: str) -> dict[str, Any] | None:
        """The listing entry of `key` (Size, ETag), None if there is no such object. A listing
        with the key as prefix, not a HEAD: the registry's role may list only its own prefixes,
        and without a bucket-wide list S3 answers a HEAD of a missing key with 403, not 404."""
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1).get("Contents", [])
        return listed[0] if listed and listed[0]["Key"] == key else None
