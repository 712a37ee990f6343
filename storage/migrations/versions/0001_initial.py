"""initial PRM patient model and version history

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 17:48:45.138583
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('patients',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('merged_into_id', sa.String(length=64), nullable=True),
    sa.Column('mrn', sa.Text(), nullable=True),
    sa.Column('legal_name', sa.Text(), nullable=True),
    sa.Column('family_name', sa.Text(), nullable=True),
    sa.Column('given_name', sa.Text(), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('birth_date_precision', sa.String(length=5), nullable=True),
    sa.Column('gender', sa.String(length=16), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=True),
    sa.Column('deceased_boolean', sa.Boolean(), nullable=True),
    sa.Column('deceased_datetime', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('primary_phone', sa.String(length=32), nullable=True),
    sa.Column('email', sa.Text(), nullable=True),
    sa.Column('address_line', sa.Text(), nullable=True),
    sa.Column('address_city', sa.Text(), nullable=True),
    sa.Column('address_state', sa.Text(), nullable=True),
    sa.Column('address_postal_code', sa.Text(), nullable=True),
    sa.Column('address_country', sa.Text(), nullable=True),
    sa.Column('race_code', sa.Text(), nullable=True),
    sa.Column('race_display', sa.Text(), nullable=True),
    sa.Column('ethnicity_code', sa.Text(), nullable=True),
    sa.Column('ethnicity_display', sa.Text(), nullable=True),
    sa.Column('preferred_language', sa.Text(), nullable=True),
    sa.Column('emergency_contact_name', sa.Text(), nullable=True),
    sa.Column('emergency_contact_relationship', sa.Text(), nullable=True),
    sa.Column('emergency_contact_phone', sa.Text(), nullable=True),
    sa.Column('ssn_ciphertext', sa.Text(), nullable=True),
    sa.Column('ssn_hash', sa.String(length=64), nullable=True),
    sa.Column('remainder', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients')),
    sa.UniqueConstraint('mrn', name=op.f('uq_patients_mrn'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index('ix_patients_family_name_birth_date', ['family_name', 'birth_date'], unique=False)
        batch_op.create_index('ix_patients_last_updated', ['last_updated'], unique=False)
        batch_op.create_index('ix_patients_ssn_hash', ['ssn_hash'], unique=False, postgresql_where=sa.text('ssn_hash IS NOT NULL'), sqlite_where=sa.text('ssn_hash IS NOT NULL'))

    op.create_table('resource_history',
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('snapshot', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('resource_type', 'resource_id', 'version_id', name=op.f('pk_resource_history'))
    )
    with op.batch_alter_table('resource_history', schema=None) as batch_op:
        batch_op.create_index('ix_resource_history_type_last_updated', ['resource_type', 'last_updated'], unique=False)

    op.create_table('patient_addresses',
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('use', sa.Text(), nullable=True),
    sa.Column('type', sa.Text(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('line', sa.Text(), nullable=True),
    sa.Column('city', sa.Text(), nullable=True),
    sa.Column('district', sa.Text(), nullable=True),
    sa.Column('state', sa.Text(), nullable=True),
    sa.Column('postal_code', sa.Text(), nullable=True),
    sa.Column('country', sa.Text(), nullable=True),
    sa.Column('extra', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_addresses_patient_id_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patient_id', 'position', name=op.f('pk_patient_addresses'))
    )
    op.create_table('patient_identifiers',
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('use', sa.Text(), nullable=True),
    sa.Column('system', sa.Text(), nullable=True),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('value_hash', sa.String(length=64), nullable=True),
    sa.Column('value_ciphertext', sa.Text(), nullable=True),
    sa.Column('type_system', sa.Text(), nullable=True),
    sa.Column('type_code', sa.Text(), nullable=True),
    sa.Column('extra', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_identifiers_patient_id_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patient_id', 'position', name=op.f('pk_patient_identifiers'))
    )
    with op.batch_alter_table('patient_identifiers', schema=None) as batch_op:
        batch_op.create_index('ix_patient_identifiers_value_hash', ['value_hash'], unique=False, postgresql_where=sa.text('value_hash IS NOT NULL'), sqlite_where=sa.text('value_hash IS NOT NULL'))
        batch_op.create_index('ix_patient_identifiers_value_system', ['value', 'system'], unique=False)

    op.create_table('patient_names',
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('use', sa.Text(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('family', sa.Text(), nullable=True),
    sa.Column('given', sa.Text(), nullable=True),
    sa.Column('prefix', sa.Text(), nullable=True),
    sa.Column('suffix', sa.Text(), nullable=True),
    sa.Column('extra', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_names_patient_id_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patient_id', 'position', name=op.f('pk_patient_names'))
    )
    op.create_table('patient_telecoms',
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('system', sa.Text(), nullable=True),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('value_e164', sa.String(length=32), nullable=True),
    sa.Column('use', sa.Text(), nullable=True),
    sa.Column('rank', sa.Integer(), nullable=True),
    sa.Column('extra', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_telecoms_patient_id_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patient_id', 'position', name=op.f('pk_patient_telecoms'))
    )
    with op.batch_alter_table('patient_telecoms', schema=None) as batch_op:
        batch_op.create_index('ix_patient_telecoms_value_e164', ['value_e164'], unique=False, postgresql_where=sa.text('value_e164 IS NOT NULL'), sqlite_where=sa.text('value_e164 IS NOT NULL'))




def downgrade() -> None:

    with op.batch_alter_table('patient_telecoms', schema=None) as batch_op:
        batch_op.drop_index('ix_patient_telecoms_value_e164', postgresql_where=sa.text('value_e164 IS NOT NULL'), sqlite_where=sa.text('value_e164 IS NOT NULL'))

    op.drop_table('patient_telecoms')
    op.drop_table('patient_names')
    with op.batch_alter_table('patient_identifiers', schema=None) as batch_op:
        batch_op.drop_index('ix_patient_identifiers_value_system')
        batch_op.drop_index('ix_patient_identifiers_value_hash', postgresql_where=sa.text('value_hash IS NOT NULL'), sqlite_where=sa.text('value_hash IS NOT NULL'))

    op.drop_table('patient_identifiers')
    op.drop_table('patient_addresses')
    with op.batch_alter_table('resource_history', schema=None) as batch_op:
        batch_op.drop_index('ix_resource_history_type_last_updated')

    op.drop_table('resource_history')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index('ix_patients_ssn_hash', postgresql_where=sa.text('ssn_hash IS NOT NULL'), sqlite_where=sa.text('ssn_hash IS NOT NULL'))
        batch_op.drop_index('ix_patients_last_updated')
        batch_op.drop_index('ix_patients_family_name_birth_date')

    op.drop_table('patients')

