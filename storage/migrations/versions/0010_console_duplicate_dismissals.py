"""console duplicate dismissals: the pairs a reviewer marked as not a duplicate

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 03:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_duplicate_dismissals',
    sa.Column('first_id', sa.String(length=64), nullable=False),
    sa.Column('second_id', sa.String(length=64), nullable=False),
    sa.Column('dismissed_at', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('dismissed_by', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('first_id', 'second_id', name=op.f('pk_console_duplicate_dismissals'))
    )


def downgrade() -> None:
    op.drop_table('console_duplicate_dismissals')
