"""audit events: the remainder compressed with lz4 (PostgreSQL)

A search's AuditEvent names every patient on the page, and its text (about 2.5 kB for 20
patients) is over PostgreSQL's 2 kB TOAST threshold, so every stored search event was
compressed with pglz: 56 µs of PostgreSQL CPU per 4.6 kB event here, against 20 µs with lz4,
which also stored it slightly smaller. Values already stored keep pglz (both read back).
Skipped where the server was built without lz4; nothing to do on SQLite.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 21:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

_LZ4_BUILT_IN = sa.text(
    "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql' and bind.execute(_LZ4_BUILT_IN).scalar():
        op.execute('ALTER TABLE audit_events ALTER COLUMN remainder SET COMPRESSION lz4')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE audit_events ALTER COLUMN remainder SET COMPRESSION DEFAULT')
