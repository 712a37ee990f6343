"""Tables of the Bulk Data export (``$export``): one row per export job, with what it was asked
for, who asked, how far it got (a checkpoint to resume from) and how it ended; one row per
NDJSON file it wrote to the blob store."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from storage.media_tables import SHA256_LENGTH
from storage.tables import ID_LENGTH, UtcDateTime, metadata

bulk_export_jobs = Table(
    "bulk_export_jobs",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("level", String(16), nullable=False),
    Column("request_url", Text, nullable=False),
    Column("types", Text, nullable=False),
    Column("left_out", Text),
    Column("since", Text),
    Column("subject", Text),
    Column("reveal_ssn", Boolean, nullable=False),
    Column("transaction_time", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    Column("lease_owner", String(64)),
    Column("lease_until", UtcDateTime()),
    Column("checkpoint", Text),
    Column("exported", BigInteger, nullable=False, server_default="0"),
    Column("planned", BigInteger),
    Column("error", Text),
    Index("ix_bulk_export_jobs_status", "status"),
)
"""``status``: queued, in-progress, completed, failed or cancelled (removed soon after);
``level``: system or patient; ``types``: the exported types, comma-separated, in order;
``left_out``: types a kick-off without ``_type`` skipped because the token may not search
them; ``subject``: the token subject that started it (NULL without authorisation), the only
one who may poll it or fetch its files; ``reveal_ssn``: whether its Patients carry SSNs in
clear (decided at kick-off from the token's scopes); ``lease_*``: the process running it and
until when (an expired lease lets another process resume it); ``checkpoint``: JSON, where the
next file starts (type index, page token, file number)."""

bulk_export_files = Table(
    "bulk_export_files",
    metadata,
    Column("job_id", String(ID_LENGTH), ForeignKey("bulk_export_jobs.id", ondelete="CASCADE"),
           nullable=False),
    Column("seq", Integer, nullable=False, autoincrement=False),
    Column("name", String(128), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("sha256", String(SHA256_LENGTH), nullable=False),
    Column("resource_count", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sealed", Boolean, nullable=False),
    PrimaryKeyConstraint("job_id", "seq"),
    Index("ix_bulk_export_files_sha256", "sha256"),
)
"""One NDJSON file of a job: ``kind`` output (resources of ``resource_type``) or error
(OperationOutcomes); its bytes are the blob ``sha256`` of the blob store, ``sealed`` when
encrypted at rest (the file store) and decrypted as they are served."""
