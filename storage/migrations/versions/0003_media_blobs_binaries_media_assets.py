"""media: blobs, binaries, media assets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 21:10:21.501732
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('binaries',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('content_type', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('security_context', sa.Text(), nullable=True),
    sa.Column('remainder', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_binaries'))
    )
    with op.batch_alter_table('binaries', schema=None) as batch_op:
        batch_op.create_index('ix_binaries_last_updated', ['last_updated'], unique=False)
        batch_op.create_index('ix_binaries_sha256', ['sha256'], unique=False)

    op.create_table('blobs',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha1_base64', sa.String(length=28), nullable=False),
    sa.Column('detected_type', sa.Text(), nullable=True),
    sa.Column('stored_at', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_blobs'))
    )
    op.create_table('media_assets',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('doc_status', sa.String(length=32), nullable=True),
    sa.Column('category', sa.String(length=32), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=True),
    sa.Column('type_system', sa.Text(), nullable=True),
    sa.Column('type_code', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('document_date', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('binary_id', sa.String(length=64), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('file_size', sa.BigInteger(), nullable=True),
    sa.Column('content_type', sa.Text(), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('remainder', sa.Text(), nullable=True),
    sa.Column('description_search', sa.Text(), nullable=True),
    sa.Column('description_exact', sa.Text(), nullable=True),
    sa.Column('period_low', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('period_high', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_assets'))
    )
    with op.batch_alter_table('media_assets', schema=None) as batch_op:
        batch_op.create_index('ix_media_assets_document_date', ['document_date'], unique=False)
        batch_op.create_index('ix_media_assets_last_updated', ['last_updated'], unique=False)
        batch_op.create_index('ix_media_assets_patient_id', ['patient_id'], unique=False)
        batch_op.create_index('ix_media_assets_sha256', ['sha256'], unique=False)

    op.create_table('binaries_references',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_id'], ['binaries.id'], name=op.f('fk_binaries_references_resource_id_binaries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'position', name=op.f('pk_binaries_references'))
    )
    with op.batch_alter_table('binaries_references', schema=None) as batch_op:
        batch_op.create_index('ix_binaries_references_param_target', ['param', 'target_id', 'target_type'], unique=False)

    op.create_table('binaries_tokens',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('system', sa.Text(), nullable=True),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('text_norm', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_id'], ['binaries.id'], name=op.f('fk_binaries_tokens_resource_id_binaries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'position', name=op.f('pk_binaries_tokens'))
    )
    with op.batch_alter_table('binaries_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_binaries_tokens_param_code', ['param', 'code'], unique=False)

    op.create_table('media_assets_references',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_id'], ['media_assets.id'], name=op.f('fk_media_assets_references_resource_id_media_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'position', name=op.f('pk_media_assets_references'))
    )
    with op.batch_alter_table('media_assets_references', schema=None) as batch_op:
        batch_op.create_index('ix_media_assets_references_param_target', ['param', 'target_id', 'target_type'], unique=False)

    op.create_table('media_assets_tokens',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('system', sa.Text(), nullable=True),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('text_norm', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_id'], ['media_assets.id'], name=op.f('fk_media_assets_tokens_resource_id_media_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'position', name=op.f('pk_media_assets_tokens'))
    )
    with op.batch_alter_table('media_assets_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_media_assets_tokens_param_code', ['param', 'code'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('media_assets_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_media_assets_tokens_param_code')

    op.drop_table('media_assets_tokens')
    with op.batch_alter_table('media_assets_references', schema=None) as batch_op:
        batch_op.drop_index('ix_media_assets_references_param_target')

    op.drop_table('media_assets_references')
    with op.batch_alter_table('binaries_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_binaries_tokens_param_code')

    op.drop_table('binaries_tokens')
    with op.batch_alter_table('binaries_references', schema=None) as batch_op:
        batch_op.drop_index('ix_binaries_references_param_target')

    op.drop_table('binaries_references')
    with op.batch_alter_table('media_assets', schema=None) as batch_op:
        batch_op.drop_index('ix_media_assets_sha256')
        batch_op.drop_index('ix_media_assets_patient_id')
        batch_op.drop_index('ix_media_assets_last_updated')
        batch_op.drop_index('ix_media_assets_document_date')

    op.drop_table('media_assets')
    op.drop_table('blobs')
    with op.batch_alter_table('binaries', schema=None) as batch_op:
        batch_op.drop_index('ix_binaries_sha256')
        batch_op.drop_index('ix_binaries_last_updated')

    op.drop_table('binaries')
