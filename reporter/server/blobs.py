"""Content-addressed blob stores: a local directory (default) or S3 (``s3://bucket/prefix``).

A blob's key is its SHA-256 (``ab/abcdef...``). :meth:`BlobStore.put_file` moves or uploads
an already validated temporary file and is idempotent: storing the same content twice, from
two workers at once, leaves one blob. A blob becomes a report only when its database row
commits, so a worker killed between the two leaves an unreferenced blob that nothing counts
and that :mod:`reporter.server.retention` removes after a grace period.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Protocol

from reporter.server.errors import ConfigError

CHUNK = 1024 * 1024


def blob_key(sha256_hex: str) -> str:
    """The key of a blob with this digest."""
    return f"{sha256_hex[:2]}/{sha256_hex}"


class BlobStore(Protocol):
    """What the service needs of a blob store."""

    url: str

    def put_file(self, key: str, path: str) -> None:
        """Store the file at *path* under *key* (consumes the file; idempotent)."""

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        """The blob's bytes."""

    def delete(self, key: str) -> None:
        """Remove a blob (missing is fine)."""

    def iter_keys(self) -> Iterator[tuple[str, float]]:
        """Every blob as (key, modification time)."""


class LocalBlobStore:
    """Blobs as files under one directory, written with temp name + fsync + rename."""

    def __init__(self, root: str, *, fsync: bool = True) -> None:
        self.root = os.path.abspath(root)
        self.url = self.root
        self.fsync = fsync
        self._dirs: set[str] = set()   # the ab/ directories known to exist
        os.makedirs(self.root, mode=0o750, exist_ok=True)

    def path(self, key: str) -> str:
        """The file holding *key*."""
        if "/" not in key or ".." in key or key.startswith("/"):
            raise ValueError(f"bad blob key {key!r}")
        return os.path.join(self.root, key)

    def put_file(self, key: str, path: str) -> None:
        """Rename the (same-filesystem) temp file into place; an existing blob wins."""
        dest = self.path(key)
        parent = os.path.dirname(dest)
        if parent not in self._dirs:
            os.makedirs(parent, mode=0o750, exist_ok=True)
            self._dirs.add(parent)
        if self.fsync:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if os.path.exists(dest):
            os.unlink(path)
            return
        os.chmod(path, 0o640)
        os.replace(path, dest)  # same content either way, so a racing writer is harmless
        if self.fsync:
            dfd = os.open(os.path.dirname(dest), os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        """Read the blob in 1 MiB chunks."""
        with open(self.path(key), "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def delete(self, key: str) -> None:
        """Unlink the blob file."""
        try:
            os.unlink(self.path(key))
        except FileNotFoundError:
            pass

    def iter_keys(self) -> Iterator[tuple[str, float]]:
        """Walk the two-level layout."""
        for sub in sorted(os.listdir(self.root)):
            d = os.path.join(self.root, sub)
            if len(sub) != 2 or not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                try:
                    yield f"{sub}/{name}", os.stat(os.path.join(d, name)).st_mtime
                except FileNotFoundError:
                    continue


class S3BlobStore:
    """Blobs as objects in an S3-compatible bucket (boto3; endpoint from ``AWS_ENDPOINT_URL``)."""

    def __init__(self, url: str) -> None:
        import boto3  # only when S3 is configured
        from boto3.s3.transfer import TransferConfig

        rest = url[len("s3://"):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ConfigError(f"blob URL '{url}' names no bucket (s3://BUCKET/PREFIX)")
        self.url = url
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client: Any = boto3.client("s3")
        self._transfer = TransferConfig(multipart_threshold=64 * CHUNK, multipart_chunksize=16 * CHUNK,
                                        max_concurrency=4)

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, path: str) -> None:
        """Upload from disk (multipart for large files), then drop the temp file."""
        try:
            self._client.upload_file(path, self.bucket, self._name(key), Config=self._transfer)
        finally:
            os.unlink(path)

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        """Stream the object body."""
        body = self._client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"]
        try:
            while chunk := body.read(CHUNK):
                yield chunk
        finally:
            body.close()

    def delete(self, key: str) -> None:
        """Delete the object."""
        self._client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def iter_keys(self) -> Iterator[tuple[str, float]]:
        """List the objects under the prefix."""
        paginator = self._client.get_paginator("list_objects_v2")
        start = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            for obj in page.get("Contents", []):
                key = obj["Key"][len(start):]
                if "/" in key:
                    yield key, obj["LastModified"].timestamp()


def open_blob_store(url: str, *, fsync: bool = True) -> BlobStore:
    """A blob store for ``s3://bucket/prefix`` or a local directory path (``file://`` allowed)."""
    if url.startswith("s3://"):
        return S3BlobStore(url)
    if url.startswith("file://"):
        url = url[len("file://"):]
    if "://" in url:
        raise ConfigError(f"unsupported blob URL '{url}' (use a directory or s3://bucket/prefix)")
    return LocalBlobStore(url, fsync=fsync)
