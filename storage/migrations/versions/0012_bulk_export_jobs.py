"""bulk export jobs: the $export jobs (what was asked, by whom, checkpoint, outcome) and their NDJSON files

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 04:02:18.384377
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bulk_export_jobs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('request_url', sa.Text(), nullable=False),
    sa.Column('types', sa.Text(), nullable=False),
    sa.Column('left_out', sa.Text(), nullable=True),
    sa.Column('since', sa.Text(), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('reveal_ssn', sa.Boolean(), nullable=False),
    sa.Column('transaction_time', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_at', storage.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', storage.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('checkpoint', sa.Text(), nullable=True),
    sa.Column('exported', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('planned', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_export_jobs'))
    )
    with op.batch_alter_table('bulk_export_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_bulk_export_jobs_status', ['status'], unique=False)

    op.create_table('bulk_export_files',
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('resource_count', sa.BigInteger(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sealed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['bulk_export_jobs.id'], name=op.f('fk_bulk_export_files_job_id_bulk_export_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'seq', name=op.f('pk_bulk_export_files'))
    )
    with op.batch_alter_table('bulk_export_files', schema=None) as batch_op:
        batch_op.create_index('ix_bulk_export_files_sha256', ['sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bulk_export_files', schema=None) as batch_op:
        batch_op.drop_index('ix_bulk_export_files_sha256')

    op.drop_table('bulk_export_files')
    with op.batch_alter_table('bulk_export_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_bulk_export_jobs_status')

    op.drop_table('bulk_export_jobs')
