"""Tables of the web console (``/console``): the duplicate pairs a reviewer dismissed as not
the same person, so the duplicates queue never shows them again."""

from __future__ import annotations

from sqlalchemy import Column, PrimaryKeyConstraint, String, Table, Text

from storage.tables import ID_LENGTH, UtcDateTime, metadata

console_duplicate_dismissals = Table(
    "console_duplicate_dismissals",
    metadata,
    Column("first_id", String(ID_LENGTH), nullable=False),
    Column("second_id", String(ID_LENGTH), nullable=False),
    Column("dismissed_at", UtcDateTime(), nullable=False),
    Column("dismissed_by", Text),
    PrimaryKeyConstraint("first_id", "second_id"),
)
"""One row per dismissed pair of patient ids, the smaller id first; kept for good (who and when,
for the audit's sake)."""
