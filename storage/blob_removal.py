"""Removing a blob's bytes once nothing uses them, without racing a writer of the same bytes.

Blobs are content-addressed, so an upload of identical bytes may be placing (or counting on)
the very object a removal is about to delete. Every writer that makes a database row point at
a blob (a Binary version's ``blobs`` row, a bulk export's file row) holds the blob's lock for
the rest of its transaction (``lock_blob``); a removal runs after the releasing transaction has
committed (never before: a rolled-back release must find its bytes), takes the same lock, and
deletes the bytes only if no committed row uses them any more. On SQLite every write
transaction holds the database's one write lock, which serializes the same steps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import exists, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.blobs import BlobStore
from storage.export_tables import bulk_export_files
from storage.media_tables import blobs

logger = logging.getLogger("fhir_server")


async def lock_blob(connection: AsyncConnection, sha256: str) -> None:
    """Hold ``sha256``'s blob lock until ``connection``'s transaction ends (PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                                 {"key": f"blob:{sha256}"})


async def remove_unused_blobs(engine: AsyncEngine, store: BlobStore,
                              candidates: Iterable[str]) -> list[str]:
    """Delete the bytes of each candidate no Binary blob row and no export file uses (each
    checked and deleted under its lock, in a transaction of its own); the ones deleted."""
    removed: list[str] = []
    for sha256 in sorted(set(candidates)):
        async with engine.begin() as connection:
            await lock_blob(connection, sha256)
            used = (await connection.execute(select(
                exists().where(blobs.c.sha256 == sha256)
                | exists().where(bulk_export_files.c.sha256 == sha256)))).scalar_one()
            if used:
                continue
            try:
                await store.delete(sha256)
            except Exception as error:  # noqa: BLE001 (an unused blob left behind is no loss)
                logger.warning("unused blob %s… not removed: %s", sha256[:12],
                               type(error).__name__)
                continue
            removed.append(sha256)
    return removed
