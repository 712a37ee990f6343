"""Blobs as files under a root folder: ``root/ab/cd/<sha256>``, staged in ``root/.staging``
(the same filesystem, so a commit is a rename). Staged files are fsynced before the rename and
the folder after it, so a committed Binary never points at bytes a crash lost."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from storage.blobs.base import BlobMissing, StagedBlob, stage_to_file


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FileBlobStore:
    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging = root / ".staging"

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def stage(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StagedBlob:
        return await stage_to_file(chunks, self.staging, max_bytes=max_bytes)

    async def commit(self, staged: StagedBlob) -> bool:
        target = self.path_of(staged.info.sha256)
        if not staged.path.exists():
            return False
        if target.exists():
            staged.path.unlink(missing_ok=True)
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged.path, 0o640)
        os.replace(staged.path, target)
        _sync_directory(target.parent)  # the rename itself survives a crash
        return True

    async def discard(self, staged: StagedBlob) -> None:
        staged.path.unlink(missing_ok=True)

    async def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).exists()

    async def delete(self, sha256: str) -> None:
        self.path_of(sha256).unlink(missing_ok=True)

    async def size(self, sha256: str) -> int:
        try:
            return self.path_of(sha256).stat().st_size
        except FileNotFoundError:
            raise BlobMissing(sha256) from None

    async def open(self, sha256: str, *, start: int = 0, end: int | None = None,
                   chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        try:
            file = self.path_of(sha256).open("rb")
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        with file:
            file.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                chunk = await asyncio.to_thread(file.read, want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    async def presigned_url(self, sha256: str, *, expires_seconds: int, content_type: str,
                            filename: str | None) -> str | None:
        return None

    async def close(self) -> None:
        return None
