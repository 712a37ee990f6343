"""messaging outbox, templates, dispatches and opt-outs

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 23:49:19.813751
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('message_deliveries',
    sa.Column('communication_id', sa.String(length=64), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('template_name', sa.String(length=100), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('lease_until', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('worker', sa.String(length=64), nullable=True),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('provider_message_id', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('communication_id', name=op.f('pk_message_deliveries')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_message_deliveries_idempotency_key'))
    )
    with op.batch_alter_table('message_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_message_deliveries_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_message_deliveries_provider_message_id', ['provider_message_id'], unique=False)
        batch_op.create_index('ix_message_deliveries_request_id', ['request_id'], unique=False)
        batch_op.create_index('ix_message_deliveries_state_next_attempt', ['state', 'next_attempt_at'], unique=False)

    op.create_table('message_templates',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('variables', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_templates')),
    sa.UniqueConstraint('name', name=op.f('uq_message_templates_name'))
    )
    op.create_table('messaging_opt_outs',
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('recorded_at', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('patient_id', 'channel', name=op.f('pk_messaging_opt_outs'))
    )
    op.create_table('request_dispatches',
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('request_version', sa.Integer(), nullable=False),
    sa.Column('dispatched_at', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('message_count', sa.Integer(), nullable=False),
    sa.Column('finished_at', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_request_dispatches'))
    )


def downgrade() -> None:
    op.drop_table('request_dispatches')
    op.drop_table('messaging_opt_outs')
    op.drop_table('message_templates')
    with op.batch_alter_table('message_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_message_deliveries_state_next_attempt')
        batch_op.drop_index('ix_message_deliveries_request_id')
        batch_op.drop_index('ix_message_deliveries_provider_message_id')
        batch_op.drop_index('ix_message_deliveries_created_at')

    op.drop_table('message_deliveries')
