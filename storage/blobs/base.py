"""The blob store contract and the staging step every store shares."""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

HEAD_BYTES = 8192


class BlobTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class BlobEmpty(Exception):
    """The upload had no bytes."""


class BlobMissing(Exception):
    """The store does not hold this hash."""


class BlobStoreUnavailable(Exception):
    """The store could not be reached or refused an operation (not a missing blob): the
    request may succeed later."""


def disk_failure(error: OSError, doing: str) -> BlobStoreUnavailable:
    """A local disk's failure (full, read-only, a broken folder) as the store's: the error's
    code (``ENOSPC``), never the path."""
    code = errno.errorcode.get(error.errno or 0, type(error).__name__)
    return BlobStoreUnavailable(f"the server's disk failed while {doing} ({code})")


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    sha1_base64: str
    size: int
    head: bytes


@dataclass
class StagedBlob:
    """Uploaded bytes in a local temporary file, hashed, not yet recorded. ``preplaced``:
    the store holds them already (sent ahead of the recording transaction)."""

    info: BlobInfo
    path: Path
    preplaced: bool = False


class BlobStore(Protocol):
    kind: str

    async def stage(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StagedBlob: ...

    async def commit(self, staged: StagedBlob, *, new: bool = False) -> bool:
        """Place the staged bytes under their hash unless held already (True when placed).
        ``new``: the caller's records show the content is not held (its blob row was just
        created), so the store may skip looking; bytes left under that hash by an earlier
        failed attempt are the same bytes, and placing them again is harmless."""

    async def preplace(self, staged: StagedBlob, *,
                       unless: Callable[[], Awaitable[bool]]) -> bool:
        """Send staged bytes that are slow to place (large ones, to a remote store) before
        the transaction that records them, so no transaction waits on the transfer, unless
        ``unless()`` (asked only then) says the content is held already; sets
        ``staged.preplaced`` and says whether it sent them. The later ``commit`` then checks
        they are still there (a removal of unused bytes may have run in between) and sends
        them again only if not."""

    async def discard(self, staged: StagedBlob) -> None: ...

    async def exists(self, sha256: str) -> bool: ...

    async def delete(self, sha256: str) -> None: ...

    async def size(self, sha256: str) -> int: ...

    def open(self, sha256: str, *, start: int = 0, end: int | None = None,
             chunk_size: int = 256 * 1024) -> AsyncGenerator[bytes, None]:
        """The bytes ``start``..``end`` (inclusive; None: to the end); BlobMissing at the
        first step when the store does not hold them."""

    async def presigned_url(self, sha256: str, *, expires_seconds: int, content_type: str,
                            filename: str | None) -> str | None: ...

    async def close(self) -> None: ...


WRITE_BYTES = 1024 * 1024
"""Bytes gathered before each write (one worker-thread hop per MiB, not per network chunk)."""


async def stage_to_file(chunks: AsyncIterable[bytes], directory: Path, *,
                        max_bytes: int, durable: bool = True) -> StagedBlob:
    """Write the chunks to a new file in ``directory`` while hashing; BlobTooLarge as soon as
    more than ``max_bytes`` arrived, BlobEmpty for nothing (the file is removed either way).
    Hashing and writing run together in a worker thread, a MiB at a time. ``durable``: the
    file is flushed to disk (fsync) before it is handed on, for a store that keeps this very
    file; a store that copies the bytes elsewhere (S3) and deletes the file does not need it
    (an fsync of 1 MiB took 3.6 ms here)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=directory, prefix="upload-")
    except OSError as exc:
        raise disk_failure(exc, "receiving the upload") from exc
    path = Path(name)
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    size = 0
    head = b""
    pending = bytearray()

    def write(file: BinaryIO, data: bytes | bytearray) -> None:
        sha256.update(data)
        sha1.update(data)
        file.write(data)

    try:
        with os.fdopen(handle, "wb") as file:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > max_bytes:
                    raise BlobTooLarge(max_bytes)
                if len(head) < HEAD_BYTES:
                    head += chunk[:HEAD_BYTES - len(head)]
                pending += chunk
                if len(pending) >= WRITE_BYTES:
                    full, pending = pending, bytearray()  # hand the buffer over, no copy
                    await asyncio.to_thread(write, file, full)
            if size == 0:
                raise BlobEmpty()
            await asyncio.to_thread(_finish, file, write, pending, durable)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise disk_failure(exc, "receiving the upload") from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    info = BlobInfo(sha256.hexdigest(), base64.b64encode(sha1.digest()).decode(), size, head)
    return StagedBlob(info, path)


def _finish(file: BinaryIO, write: Callable[[BinaryIO, bytes | bytearray], None],
            rest: bytes | bytearray, durable: bool) -> None:
    if rest:
        write(file, rest)
    file.flush()
    if durable:
        os.fsync(file.fileno())
