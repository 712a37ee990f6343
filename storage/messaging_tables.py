"""Tables of the PRM's messaging: ``notification_requests`` (FHIR CommunicationRequest) and
``outbound_notifications`` (FHIR Communication), each with search child tables keyed by
(resource_id, position)."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from storage.media_tables import search_child_tables
from storage.tables import ID_LENGTH, UtcDateTime, metadata

notification_requests = Table(
    "notification_requests",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime()),
    Column("status", String(32), nullable=False),
    Column("priority", String(16)),
    Column("prm_priority", String(16)),
    Column("channel", String(16)),
    Column("category_code", Text),
    Column("patient_id", String(ID_LENGTH)),
    Column("recipient_count", Integer),
    Column("occurrence_low", UtcDateTime()),
    Column("occurrence_high", UtcDateTime()),
    Column("authored_on", UtcDateTime()),
    Column("remainder", Text),
    Index("ix_notification_requests_status_occurrence", "status", "occurrence_low"),
    Index("ix_notification_requests_patient_id", "patient_id"),
    Index("ix_notification_requests_last_updated", "last_updated"),
)
"""The PRM's send orders (FHIR CommunicationRequest)."""

outbound_notifications = Table(
    "outbound_notifications",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime()),
    Column("status", String(32), nullable=False),
    Column("channel", String(16)),
    Column("category_code", Text),
    Column("patient_id", String(ID_LENGTH)),
    Column("recipient_count", Integer),
    Column("request_id", String(ID_LENGTH)),
    Column("sent", UtcDateTime()),
    Column("received", UtcDateTime()),
    Column("remainder", Text),
    Index("ix_outbound_notifications_patient_id", "patient_id"),
    Index("ix_outbound_notifications_request_id", "request_id"),
    Index("ix_outbound_notifications_sent", "sent"),
    Index("ix_outbound_notifications_last_updated", "last_updated"),
)
"""The PRM's messages, sent or not (FHIR Communication)."""

NOTIFICATION_REQUEST_CHILD_TABLES = search_child_tables("notification_requests")
OUTBOUND_NOTIFICATION_CHILD_TABLES = search_child_tables("outbound_notifications")
