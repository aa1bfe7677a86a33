"""Where attachment files are kept: the `AttachmentStore` port and its two adapters, a
directory on disk (the default, under HUB_DATA_DIR) and an S3-compatible bucket.

Keys are made by the hub (an attachment id and a variant), never from a client's file
name. What is stored is what is served: images already re-encoded without metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

CHUNK = 64 * 1024
FILE_CHUNK = 512 * 1024
_KEY = re.compile(r"[0-9a-f]{32}(?:\.[a-z]+)?")


@dataclass
class Blob:
    """A stored file being read: its size and its bytes, chunk by chunk. Iterate over
    `chunks` to the end, or call `close()`."""

    size: int
    chunks: AsyncIterator[bytes]

    async def close(self) -> None:
        aclose = getattr(self.chunks, "aclose", None)
        if aclose is not None:
            await aclose()

    async def read(self) -> bytes:
        try:
            return b"".join([chunk async for chunk in self.chunks])
        finally:
            await self.close()


class AttachmentStore(Protocol):
    """Files by key. `put` replaces; `open` is None for a key that is not there."""

    async def start(self) -> None: ...

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def open(self, key: str) -> Blob | None: ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


def _checked(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValueError(f"not an attachment key: {key!r}")
    return key


class DiskStore:
    """Files in a directory, two levels of subdirectories by the key's first characters
    (so no directory holds millions of entries). Written to a temporary name and renamed,
    so a reader never sees half a file. Several hub nodes must share the directory (a
    network file system) or use S3."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        key = _checked(key)
        return self.root / key[:2] / key[2:4] / key

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(_write_atomically, path, data)

    async def open(self, key: str) -> Blob | None:
        path = self._path(key)
        try:
            size = (await asyncio.to_thread(os.stat, path)).st_size
        except FileNotFoundError:
            return None
        return Blob(size, _file_chunks(path))

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, self._path(key))

    async def close(self) -> None:
        pass


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{id(data):x}.part")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _read_at(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(size)


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    """The file in chunks, each read in a worker thread that opens and closes the file
    itself: a download cancelled at any point (a client gone, a HEAD) leaves no file
    open. Stored files never change, so reading by offset is consistent."""
    offset = 0
    while chunk := await asyncio.to_thread(_read_at, path, offset, FILE_CHUNK):
        offset += len(chunk)
        yield chunk


class _S3Client(Protocol):
    """The calls made on aioboto3's S3 client (which ships no types)."""

    async def put_object(self, **kwargs: Any) -> Any: ...

    async def get_object(self, **kwargs: Any) -> Any: ...

    async def delete_object(self, **kwargs: Any) -> Any: ...


class S3Store:
    """Files in an S3-compatible bucket (AWS S3, MinIO, Ceph...), through aioboto3 (the
    optional dependency `supporthub[s3]`). One client for the process's life."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "attachments/",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
    ):
        self.bucket = bucket
        self.prefix = prefix
        self._options = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": access_key,
            "aws_secret_access_key": secret_key,
        }
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: _S3Client | None = None

    async def start(self) -> None:
        try:
            import aioboto3
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise RuntimeError(
                "HUB_ATTACHMENT_S3_BUCKET is set but aioboto3 is not installed"
                " (pip install 'supporthub[s3]')"
            ) from exc
        session = aioboto3.Session()
        options = {k: v for k, v in self._options.items() if v is not None}
        self._stack = contextlib.AsyncExitStack()
        self._client = await self._stack.enter_async_context(session.client("s3", **options))

    @property
    def _s3(self) -> _S3Client:
        if self._client is None:
            raise RuntimeError("the S3 store is used before start() or after close()")
        return self._client

    def _key(self, key: str) -> str:
        return self.prefix + _checked(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._s3.put_object(
            Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
        )

    async def open(self, key: str) -> Blob | None:
        from botocore.exceptions import ClientError

        try:
            reply = await self._s3.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return Blob(int(reply["ContentLength"]), _s3_chunks(reply["Body"]))

    async def delete(self, key: str) -> None:
        await self._s3.delete_object(Bucket=self.bucket, Key=self._key(key))

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None
            self._client = None


async def _s3_chunks(body) -> AsyncIterator[bytes]:
    try:
        async for chunk in body.iter_chunks(CHUNK):
            yield chunk
    finally:
        body.close()


def store_for(settings) -> AttachmentStore:
    """The store the settings name: an S3 bucket when HUB_ATTACHMENT_S3_BUCKET is set,
    else the directory HUB_ATTACHMENT_DIR (default HUB_DATA_DIR/attachments)."""
    if settings.attachment_s3_bucket:
        return S3Store(
            settings.attachment_s3_bucket,
            prefix=settings.attachment_s3_prefix,
            endpoint_url=settings.attachment_s3_endpoint_url,
            region=settings.attachment_s3_region,
            access_key=settings.attachment_s3_access_key,
            secret_key=settings.attachment_s3_secret_key,
        )
    return DiskStore(settings.attachments_path)
