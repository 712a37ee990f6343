"""Writes the dispatcher's Communications and request status changes as new versions, many at
a time on the caller's transaction (the same rows and history a client's write produces)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mappings.communication import COMMUNICATION, COMMUNICATION_REQUEST
from storage.history import HistoryEntry
from storage.messaging_tables import (
    NOTIFICATION_REQUEST_CHILD_TABLES,
    OUTBOUND_NOTIFICATION_CHILD_TABLES,
    notification_requests,
    outbound_notifications,
)
from storage.resource_rows import TableSet, insert_versions, select_rows, write_versions
from storage.row_set import RowSet

Change = Callable[[dict[str, Any]], dict[str, Any] | None]
"""Current resource -> its next version, or None to leave it as it is."""


class VersionedRecords:
    """New and changed versions of one mapped type, in batches."""

    def __init__(self, tables: TableSet, mapping: Any) -> None:
        self._tables = tables
        self._mapping = mapping

    @property
    def resource_type(self) -> str:
        return str(self._mapping.resource_type)

    async def current(self, connection: AsyncConnection,
                      ids: Sequence[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        """id -> (version, resource) of the live ones among ``ids``."""
        found = await select_rows(connection, self._tables, list(ids)) if ids else []
        return {rows.main["id"]: (rows.main["version_id"], self._mapping.to_resource(rows))
                for rows in found if rows.main["deleted_at"] is None}

    async def insert(self, connection: AsyncConnection,
                     resources: Sequence[tuple[str, dict[str, Any]]], *,
                     now: datetime) -> None:
        """First versions of new resources (id, resource)."""
        await insert_versions(connection, self._tables,
                              [self._version(resource_id, resource, 1, now, "POST")
                               for resource_id, resource in resources])

    async def change(self, connection: AsyncConnection, ids: Sequence[str], change: Change, *,
                     now: datetime) -> dict[str, dict[str, Any]]:
        """A new version of each live resource ``change`` alters; id -> new resource."""
        versions: list[tuple[RowSet, HistoryEntry, int]] = []
        changed: dict[str, dict[str, Any]] = {}
        for resource_id, (version_id, resource) in (await self.current(connection, ids)).items():
            updated = change(resource)
            if updated is None:
                continue
            rows, entry = self._version(resource_id, updated, version_id + 1, now, "PUT")
            versions.append((rows, entry, version_id))
            changed[resource_id] = updated
        if versions:
            await write_versions(connection, self._tables, versions)
        return changed

    def _version(self, resource_id: str, resource: dict[str, Any], version_id: int,
                 now: datetime, method: str) -> tuple[RowSet, HistoryEntry]:
        rows = self._mapping.to_rows(resource, resource_id=resource_id, version_id=version_id,
                                     last_updated=now, facts=None)
        entry = HistoryEntry(self.resource_type, resource_id, version_id, now, method,
                             rows.to_snapshot(derived=self._mapping.search_only))
        return rows, entry


COMMUNICATIONS = VersionedRecords(
    TableSet(outbound_notifications, OUTBOUND_NOTIFICATION_CHILD_TABLES), COMMUNICATION)
REQUESTS = VersionedRecords(
    TableSet(notification_requests, NOTIFICATION_REQUEST_CHILD_TABLES), COMMUNICATION_REQUEST)
