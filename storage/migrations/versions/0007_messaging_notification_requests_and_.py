"""messaging: notification requests and outbound notifications

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 22:37:02.459771
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notification_requests',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=True),
    sa.Column('prm_priority', sa.String(length=16), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('category_code', sa.Text(), nullable=True),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('recipient_count', sa.Integer(), nullable=True),
    sa.Column('occurrence_low', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('occurrence_high', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('authored_on', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('remainder', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_requests'))
    )
    with op.batch_alter_table('notification_requests', schema=None) as batch_op:
        batch_op.create_index('ix_notification_requests_last_updated', ['last_updated'], unique=False)
        batch_op.create_index('ix_notification_requests_patient_id', ['patient_id'], unique=False)
        batch_op.create_index('ix_notification_requests_status_occurrence', ['status', 'occurrence_low'], unique=False)

    op.create_table('outbound_notifications',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('category_code', sa.Text(), nullable=True),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('recipient_count', sa.Integer(), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('sent', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('received', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('remainder', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_notifications'))
    )
    with op.batch_alter_table('outbound_notifications', schema=None) as batch_op:
        batch_op.create_index('ix_outbound_notifications_last_updated', ['last_updated'], unique=False)
        batch_op.create_index('ix_outbound_notifications_patient_id', ['patient_id'], unique=False)
        batch_op.create_index('ix_outbound_notifications_request_id', ['request_id'], unique=False)
        batch_op.create_index('ix_outbound_notifications_sent', ['sent'], unique=False)

    op.create_table('notification_requests_references',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_id'], ['notification_requests.id'], name=op.f('fk_notification_requests_references_resource_id_notification_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'position', name=op.f('pk_notification_requests_references'))
    )
    with op.batch_alter_table('notification_requests_references', schema=None) as batch_op:
        batch_op.create_index('ix_notification_requests_references_param_target', ['param', 'target_id', 'target_type'], unique=False)

    op.create_table('notification_requests_tokens',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('system', sa.Text(), nullable=True),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('text_norm', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_id'], ['notification_requests.id'], name=op.f('fk_notification_requests_tokens_resource_id_notification_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'position', name=op.f('pk_notification_requests_tokens'))
    )
    with op.batch_alter_table('notification_requests_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_notification_requests_tokens_param_code', ['param', 'code'], unique=False)

    op.create_table('outbound_notifications_references',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_id'], ['outbound_notifications.id'], name=op.f('fk_outbound_notifications_references_resource_id_outbound_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'position', name=op.f('pk_outbound_notifications_references'))
    )
    with op.batch_alter_table('outbound_notifications_references', schema=None) as batch_op:
        batch_op.create_index('ix_outbound_notifications_references_param_target', ['param', 'target_id', 'target_type'], unique=False)

    op.create_table('outbound_notifications_tokens',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('system', sa.Text(), nullable=True),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('text_norm', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_id'], ['outbound_notifications.id'], name=op.f('fk_outbound_notifications_tokens_resource_id_outbound_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'position', name=op.f('pk_outbound_notifications_tokens'))
    )
    with op.batch_alter_table('outbound_notifications_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_outbound_notifications_tokens_param_code', ['param', 'code'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbound_notifications_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_notifications_tokens_param_code')

    op.drop_table('outbound_notifications_tokens')
    with op.batch_alter_table('outbound_notifications_references', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_notifications_references_param_target')

    op.drop_table('outbound_notifications_references')
    with op.batch_alter_table('notification_requests_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_requests_tokens_param_code')

    op.drop_table('notification_requests_tokens')
    with op.batch_alter_table('notification_requests_references', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_requests_references_param_target')

    op.drop_table('notification_requests_references')
    with op.batch_alter_table('outbound_notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_notifications_sent')
        batch_op.drop_index('ix_outbound_notifications_request_id')
        batch_op.drop_index('ix_outbound_notifications_patient_id')
        batch_op.drop_index('ix_outbound_notifications_last_updated')

    op.drop_table('outbound_notifications')
    with op.batch_alter_table('notification_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_requests_status_occurrence')
        batch_op.drop_index('ix_notification_requests_patient_id')
        batch_op.drop_index('ix_notification_requests_last_updated')

    op.drop_table('notification_requests')
