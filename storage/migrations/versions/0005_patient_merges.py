"""patient merges

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 22:01:20.891641
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('patient_merges',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('merged_at', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('undone_at', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('requested_by', sa.Text(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_merges'))
    )
    with op.batch_alter_table('patient_merges', schema=None) as batch_op:
        batch_op.create_index('ix_patient_merges_source_id', ['source_id'], unique=False)
        batch_op.create_index('ix_patient_merges_target_id', ['target_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('patient_merges', schema=None) as batch_op:
        batch_op.drop_index('ix_patient_merges_target_id')
        batch_op.drop_index('ix_patient_merges_source_id')

    op.drop_table('patient_merges')
