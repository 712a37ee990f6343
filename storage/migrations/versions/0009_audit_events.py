"""audit events: the audit trail (FHIR AuditEvent) and its search rows

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 03:10:51.904335
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('recorded', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=1), nullable=False),
    sa.Column('outcome', sa.String(length=2), nullable=False),
    sa.Column('source_address', sa.String(length=64), nullable=True),
    sa.Column('remainder', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_recorded', ['recorded'], unique=False)

    op.create_table('audit_events_references',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_id'], ['audit_events.id'], name=op.f('fk_audit_events_references_resource_id_audit_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'position', name=op.f('pk_audit_events_references'))
    )
    with op.batch_alter_table('audit_events_references', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_references_param_target', ['param', 'target_id', 'target_type'], unique=False)

    op.create_table('audit_events_tokens',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('system', sa.Text(), nullable=True),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('text_norm', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_id'], ['audit_events.id'], name=op.f('fk_audit_events_tokens_resource_id_audit_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'position', name=op.f('pk_audit_events_tokens'))
    )
    with op.batch_alter_table('audit_events_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_tokens_param_code', ['param', 'code'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('audit_events_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_tokens_param_code')

    op.drop_table('audit_events_tokens')
    with op.batch_alter_table('audit_events_references', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_references_param_target')

    op.drop_table('audit_events_references')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_recorded')

    op.drop_table('audit_events')
