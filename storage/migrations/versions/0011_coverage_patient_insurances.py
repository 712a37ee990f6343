"""coverage: the PRM's insurance (patient_insurances, FHIR Coverage) and its search rows

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 03:56:00.364587
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('patient_insurances',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('coverage_order', sa.Integer(), nullable=True),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('insurance_type', sa.String(length=16), nullable=True),
    sa.Column('provider_name', sa.Text(), nullable=True),
    sa.Column('policy_number', sa.Text(), nullable=True),
    sa.Column('group_number', sa.Text(), nullable=True),
    sa.Column('type_code', sa.Text(), nullable=True),
    sa.Column('payor_search', sa.Text(), nullable=True),
    sa.Column('payor_exact', sa.Text(), nullable=True),
    sa.Column('class_search', sa.Text(), nullable=True),
    sa.Column('class_exact', sa.Text(), nullable=True),
    sa.Column('dependent_search', sa.Text(), nullable=True),
    sa.Column('dependent_exact', sa.Text(), nullable=True),
    sa.Column('remainder', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_insurances'))
    )
    with op.batch_alter_table('patient_insurances', schema=None) as batch_op:
        batch_op.create_index('ix_patient_insurances_last_updated', ['last_updated'], unique=False)
        batch_op.create_index('ix_patient_insurances_patient_id', ['patient_id'], unique=False)

    op.create_table('patient_insurances_references',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_id'], ['patient_insurances.id'], name=op.f('fk_patient_insurances_references_resource_id_patient_insurances'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'position', name=op.f('pk_patient_insurances_references'))
    )
    with op.batch_alter_table('patient_insurances_references', schema=None) as batch_op:
        batch_op.create_index('ix_patient_insurances_references_param_target', ['param', 'target_id', 'target_type'], unique=False)

    op.create_table('patient_insurances_tokens',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('system', sa.Text(), nullable=True),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('text_norm', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_id'], ['patient_insurances.id'], name=op.f('fk_patient_insurances_tokens_resource_id_patient_insurances'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'position', name=op.f('pk_patient_insurances_tokens'))
    )
    with op.batch_alter_table('patient_insurances_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_patient_insurances_tokens_param_code', ['param', 'code'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('patient_insurances_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_patient_insurances_tokens_param_code')

    op.drop_table('patient_insurances_tokens')
    with op.batch_alter_table('patient_insurances_references', schema=None) as batch_op:
        batch_op.drop_index('ix_patient_insurances_references_param_target')

    op.drop_table('patient_insurances_references')
    with op.batch_alter_table('patient_insurances', schema=None) as batch_op:
        batch_op.drop_index('ix_patient_insurances_patient_id')
        batch_op.drop_index('ix_patient_insurances_last_updated')

    op.drop_table('patient_insurances')
