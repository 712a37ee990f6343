"""Blobs as files under a root folder: ``root/ab/cd/<sha256>``, staged in ``root/.staging``
(the same filesystem, so a commit is a rename). Staged files are fsynced before the rename and
the folder after it, so a committed Binary never points at bytes a crash lost. All file
system calls run in worker threads, off the event loop."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from pathlib import Path

from storage.blobs.base import BlobMissing, StagedBlob, disk_failure, stage_to_file

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _place(staged: Path, target: Path) -> bool:
    """Move the staged file to ``target`` unless a file is there already (True when moved)."""
    try:
        if not staged.exists():
            return False
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, 0o640)
        os.replace(staged, target)
        _sync_directory(target.parent)  # the rename itself survives a crash
        return True
    finally:
        staged.unlink(missing_ok=True)


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


class FileBlobStore:
    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging = root / ".staging"

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def _held_path(self, sha256: str) -> Path | None:
        """The file of a well-formed hash; None for anything else (never a path outside)."""
        return self.path_of(sha256) if _SHA256.fullmatch(sha256) else None

    async def stage(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StagedBlob:
        return await stage_to_file(chunks, self.staging, max_bytes=max_bytes)

    async def commit(self, staged: StagedBlob, *, new: bool = False) -> bool:
        """Rename the staged file into place unless the file is there (a stat: ``new``
        changes nothing here)."""
        try:
            return await asyncio.to_thread(_place, staged.path,
                                           self.path_of(staged.info.sha256))
        except OSError as exc:
            raise disk_failure(exc, "storing the file") from exc

    async def preplace(self, staged: StagedBlob, *,
                       unless: Callable[[], Awaitable[bool]]) -> bool:
        """Nothing to send ahead: placing is a rename on the same filesystem."""
        return False

    async def discard(self, staged: StagedBlob) -> None:
        await asyncio.to_thread(staged.path.unlink, missing_ok=True)

    async def exists(self, sha256: str) -> bool:
        path = self._held_path(sha256)
        return path is not None and await asyncio.to_thread(path.is_file)

    async def delete(self, sha256: str) -> None:
        path = self._held_path(sha256)
        if path is not None:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def size(self, sha256: str) -> int:
        path = self._held_path(sha256)
        size = None if path is None else await asyncio.to_thread(_file_size, path)
        if size is None:
            raise BlobMissing(sha256)
        return size

    async def open(self, sha256: str, *, start: int = 0, end: int | None = None,
                   chunk_size: int = 256 * 1024) -> AsyncGenerator[bytes, None]:
        path = self._held_path(sha256)
        try:
            if path is None:
                raise FileNotFoundError(sha256)
            file = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        except OSError as exc:
            raise disk_failure(exc, "reading the file") from exc
        try:
            await asyncio.to_thread(file.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                try:
                    chunk = await asyncio.to_thread(file.read, want)
                except OSError as exc:
                    raise disk_failure(exc, "reading the file") from exc
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            file.close()

    async def presigned_url(self, sha256: str, *, expires_seconds: int, content_type: str,
                            filename: str | None) -> str | None:
        """None: the server signs its own download links for files on disk."""
        return None

    async def close(self) -> None:
        return None
