"""patient match keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 21:41:15.612201
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('patient_match_keys',
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_match_keys_patient_id_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patient_id', 'position', name=op.f('pk_patient_match_keys'))
    )
    with op.batch_alter_table('patient_match_keys', schema=None) as batch_op:
        batch_op.create_index('ix_patient_match_keys_key', ['key', 'patient_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('patient_match_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_patient_match_keys_key')

    op.drop_table('patient_match_keys')
