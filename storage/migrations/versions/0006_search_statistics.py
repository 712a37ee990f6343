"""finer planner statistics on the trigram-searched haystack columns

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 22:40:00

``LIKE '%|02111%'`` on a mid-frequency value was estimated ten times too common with the
default statistics, and PostgreSQL walked the primary key (about a second at 1M patients)
instead of using the trigram index (3 ms). A statistics target of 2000 on these columns makes
the estimate right. PostgreSQL only; nothing to do on SQLite.
"""

from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

COLUMNS = ("name_search", "family_search", "given_search", "address_postalcode_search")
TARGET = 2000


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"ALTER TABLE patients ALTER COLUMN {column} SET STATISTICS {TARGET}")
    op.execute(f"ANALYZE patients ({', '.join(COLUMNS)})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"ALTER TABLE patients ALTER COLUMN {column} SET STATISTICS -1")
