"""Recordings in an S3-compatible bucket (AWS S3, MinIO, …), extra ``callpipe[s3]`` (boto3).

``CALLPIPE_RECORDINGS_S3=s3://bucket/prefix`` (with ``--recording``) selects it; credentials,
region and a custom endpoint (MinIO: ``AWS_ENDPOINT_URL``) come from boto3's usual settings.

A WAV's header is only right once the call is over, and an S3 object cannot be edited: the
recording streams to a spool file on local disk (memory stays flat) and :meth:`S3Storage.finish`
uploads it when the call has ended (boto3's managed transfer: multipart for large files), in a
worker thread, then deletes the spool file.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

from callpipe.errors import ConfigurationError
from callpipe.transports.recording import safe_name

logger = logging.getLogger(__name__)


class S3Storage:
    """Spool locally, upload to ``s3://bucket/prefix<name>`` when the recording is finished."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        spool_dir: str | Path | None = None,
    ) -> None:
        if client is None:
            try:
                import boto3
            except ImportError as exc:
                raise ConfigurationError(
                    'recordings to S3 need boto3: pip install "callpipe[s3]"'
                ) from exc
            client = boto3.client("s3")
        self.bucket = bucket
        self.prefix = prefix.lstrip("/")
        self.client = client
        self.spool_dir = Path(spool_dir or Path(tempfile.gettempdir()) / "callpipe-spool")
        self._spools: dict[str, Path] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> S3Storage:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ConfigurationError(f"not an s3://bucket/prefix URL: {url!r}")
        prefix = parsed.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(parsed.netloc, prefix, **kwargs)

    def key(self, name: str) -> str:
        return f"{self.prefix}{safe_name(name)}"

    def open(self, name: str) -> BinaryIO:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / safe_name(name)
        with self._lock:
            self._spools[name] = path
        return open(path, "w+b")

    def uri(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def local_path(self, name: str) -> Path | None:
        return None  # served from the bucket, not from here

    def finish(self, name: str) -> None:
        with self._lock:
            path = self._spools.pop(name, None)
        if path is None:
            return
        try:
            self.client.upload_file(
                str(path), self.bucket, self.key(name), ExtraArgs={"ContentType": "audio/wav"}
            )
        finally:
            path.unlink(missing_ok=True)
