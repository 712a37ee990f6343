"""search columns and token and reference rows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 18:19:32.691182
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


TRIGRAM_INDEXED = ("name_search", "family_search", "given_search", "address_postalcode_search")
"""Haystack columns with a pg_trgm index on PostgreSQL: their LIKE '%|abc%' patterns use it."""


def upgrade() -> None:

    op.create_table('patient_references',
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_references_patient_id_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patient_id', 'position', name=op.f('pk_patient_references'))
    )
    with op.batch_alter_table('patient_references', schema=None) as batch_op:
        batch_op.create_index('ix_patient_references_param_target', ['param', 'target_id', 'target_type'], unique=False)

    op.create_table('patient_tokens',
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('system', sa.Text(), nullable=True),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('text_norm', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_tokens_patient_id_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patient_id', 'position', name=op.f('pk_patient_tokens'))
    )
    with op.batch_alter_table('patient_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_patient_tokens_param_code', ['param', 'code'], unique=False)

    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_search', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('name_exact', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('family_search', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('family_exact', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('given_search', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('given_exact', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address_search', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address_exact', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address_city_search', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address_city_exact', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address_state_search', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address_state_exact', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address_postalcode_search', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address_postalcode_exact', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address_country_search', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address_country_exact', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('phonetic_search', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('birth_date_end', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('death_low', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('death_high', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_patients_birth_date', ['birth_date', 'birth_date_end'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for column in TRIGRAM_INDEXED:
            op.execute(f"CREATE INDEX ix_patients_{column}_trgm ON patients"
                       f" USING gin ({column} gin_trgm_ops)")
    # no backfill: no stored patient predates these columns (0001 never shipped alone)



def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in TRIGRAM_INDEXED:
            op.execute(f"DROP INDEX IF EXISTS ix_patients_{column}_trgm")

    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index('ix_patients_birth_date')
        batch_op.drop_column('death_high')
        batch_op.drop_column('death_low')
        batch_op.drop_column('birth_date_end')
        batch_op.drop_column('phonetic_search')
        batch_op.drop_column('address_country_exact')
        batch_op.drop_column('address_country_search')
        batch_op.drop_column('address_postalcode_exact')
        batch_op.drop_column('address_postalcode_search')
        batch_op.drop_column('address_state_exact')
        batch_op.drop_column('address_state_search')
        batch_op.drop_column('address_city_exact')
        batch_op.drop_column('address_city_search')
        batch_op.drop_column('address_exact')
        batch_op.drop_column('address_search')
        batch_op.drop_column('given_exact')
        batch_op.drop_column('given_search')
        batch_op.drop_column('family_exact')
        batch_op.drop_column('family_search')
        batch_op.drop_column('name_exact')
        batch_op.drop_column('name_search')

    with op.batch_alter_table('patient_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_patient_tokens_param_code')

    op.drop_table('patient_tokens')
    with op.batch_alter_table('patient_references', schema=None) as batch_op:
        batch_op.drop_index('ix_patient_references_param_target')

    op.drop_table('patient_references')

