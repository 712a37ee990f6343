"""Tables of the PRM's messaging: ``notification_requests`` (FHIR CommunicationRequest) and
``outbound_notifications`` (FHIR Communication), each with search child tables keyed by
(resource_id, position)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text

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

message_templates = Table(
    "message_templates",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),
    Column("category", String(32)),
    Column("subject", Text),
    Column("body", Text, nullable=False),
    Column("description", Text),
    Column("variables", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""The PRM's message templates: a body with ``{variables}`` per channel (JSON list of declared
variable names in ``variables``)."""

request_dispatches = Table(
    "request_dispatches",
    metadata,
    Column("request_id", String(ID_LENGTH), primary_key=True),
    Column("request_version", Integer, nullable=False),
    Column("dispatched_at", UtcDateTime(), nullable=False),
    Column("message_count", Integer, nullable=False),
    Column("finished_at", UtcDateTime()),
)
"""One row per CommunicationRequest fanned out: the primary key makes a second fan-out of the
same request impossible, whichever worker tries."""

message_deliveries = Table(
    "message_deliveries",
    metadata,
    Column("communication_id", String(ID_LENGTH), primary_key=True),
    Column("request_id", String(ID_LENGTH), nullable=False),
    Column("patient_id", String(ID_LENGTH)),
    Column("channel", String(16), nullable=False),
    Column("address", Text, nullable=False),
    Column("subject", Text),
    Column("body", Text, nullable=False),
    Column("template_name", String(100)),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("lease_until", UtcDateTime()),
    Column("worker", String(64)),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("provider_message_id", String(64)),
    Column("last_error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    Index("ix_message_deliveries_state_next_attempt", "state", "next_attempt_at"),
    Index("ix_message_deliveries_request_id", "request_id"),
    Index("ix_message_deliveries_provider_message_id", "provider_message_id"),
    Index("ix_message_deliveries_created_at", "created_at"),
)
"""The durable outbox: one row per message to send (the Communication it records). ``state``
queued -> sending -> sent -> delivered, or failed / undelivered / unsubscribed / cancelled;
``lease_until`` bounds a worker's claim, ``idempotency_key`` names the message at the
provider so a crash between sending and recording is reconciled instead of re-sent."""

messaging_opt_outs = Table(
    "messaging_opt_outs",
    metadata,
    Column("patient_id", String(ID_LENGTH), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("address", Text),
    Column("source", String(32), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
)
"""Patients who opted out of a channel (an inbound STOP, or the operator's API)."""
