"""The audit trail: one ``audit_events`` row per access (FHIR AuditEvent), with token and
reference child rows for search. Rows are only ever inserted."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from storage.media_tables import search_child_tables
from storage.tables import ID_LENGTH, UtcDateTime, metadata

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime()),
    Column("recorded", UtcDateTime(), nullable=False),
    Column("action", String(1), nullable=False),
    Column("outcome", String(2), nullable=False),
    Column("source_address", String(64)),
    Column("remainder", Text, nullable=False),
    Index("ix_audit_events_recorded", "recorded"),
)
"""Every read, search, write and operation (FHIR AuditEvent, whole in ``remainder``)."""

AUDIT_EVENT_CHILD_TABLES = search_child_tables("audit_events", foreign_key=False)
"""No foreign key: the rows are written in their event's statement and never deleted, and the
per-row key check cost a third of storing a search's event (migration 0015)."""
