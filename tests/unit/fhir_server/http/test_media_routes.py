"""Opening a blob before the answer starts (so a lost blob is a 410, not a cut stream), and
the early open of a download that overlaps its audit: handed over once, closed unread when
the read is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import pytest

from fhir_server.http.media_routes import EarlyOpen, opened
from fhir_server.media.binaries import BinaryFile, BinaryRepository
from storage.blobs import BlobMissing

SHA = "a" * 64


class _Store:
    """Yields three chunks for SHA, BlobMissing at the first step for anything else; records
    every step and whether the generator was closed."""

    def __init__(self) -> None:
        self.steps = 0
        self.closed = False

    async def open(self, sha256: str, *, start: int = 0, end: int | None = None,
                   chunk_size: int = 0) -> AsyncGenerator[bytes, None]:
        try:
            if sha256 != SHA:
                raise BlobMissing(sha256)
            for chunk in (b"one", b"two", b"three"):
                self.steps += 1
                yield chunk
        finally:
            self.closed = True


def _repository(store: _Store) -> BinaryRepository:
    return cast(BinaryRepository, type("Repository", (), {"store": store})())


def _file(sha256: str = SHA) -> BinaryFile:
    return BinaryFile(cast(Any, None), "application/pdf", sha256, 11, None)


async def _all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def test_opened_takes_the_first_step_now_and_loses_no_byte() -> None:
    async def scenario() -> None:
        store = _Store()
        chunks = await opened(store.open(SHA))
        assert store.steps == 1
        assert await _all(chunks) == b"onetwothree"
        assert store.closed
    asyncio.run(scenario())


def test_opened_raises_blob_missing_before_any_answer() -> None:
    async def scenario() -> None:
        with pytest.raises(BlobMissing):
            await opened(_Store().open("b" * 64))
    asyncio.run(scenario())


def test_early_open_hands_the_bytes_over_once() -> None:
    async def scenario() -> None:
        store = _Store()
        early = EarlyOpen(_repository(store))
        early.start(_file())
        chunks = await early.chunks()
        assert chunks is not None and await early.chunks() is None
        await early.abandon()  # handed over: nothing to close here
        assert not store.closed
        assert await _all(chunks) == b"onetwothree"
    asyncio.run(scenario())


def test_early_open_abandoned_closes_the_stream_unread() -> None:
    async def scenario() -> None:
        store = _Store()
        early = EarlyOpen(_repository(store))
        early.start(_file())
        await early.abandon()  # e.g. the read was refused, or its audit failed
        assert store.closed and store.steps == 1
    asyncio.run(scenario())


def test_early_open_of_a_missing_blob_raises_when_taken_and_abandons_quietly() -> None:
    async def scenario() -> None:
        early = EarlyOpen(_repository(_Store()))
        early.start(_file("b" * 64))
        with pytest.raises(BlobMissing):
            await early.chunks()
        other = EarlyOpen(_repository(_Store()))
        other.start(_file("b" * 64))
        await other.abandon()
    asyncio.run(scenario())


def test_opened_closed_part_way_closes_the_stream() -> None:
    async def scenario() -> None:
        store = _Store()
        chunks = await opened(store.open(SHA))
        assert await anext(chunks) == b"one"
        await chunks.aclose()
        assert store.closed
    asyncio.run(scenario())
