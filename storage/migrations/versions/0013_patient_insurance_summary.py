"""patients.insurance_types: the insurance each patient holds in force, for $demographics

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 04:50:00
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('insurance_types', sa.Text(), nullable=True))
    bind = op.get_bind()
    held: dict[str, set[str]] = defaultdict(set)
    for patient_id, type_code in bind.execute(sa.text(
            "SELECT patient_id, type_code FROM patient_insurances "
            "WHERE deleted_at IS NULL AND status = 'active' AND patient_id IS NOT NULL")):
        held[patient_id].add(type_code or "")
    if held:
        bind.execute(sa.text("UPDATE patients SET insurance_types = :summary WHERE id = :id"),
                     [{"id": patient_id, "summary": "|" + "|".join(sorted(codes)) + "|"}
                      for patient_id, codes in held.items()])


def downgrade() -> None:
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_column('insurance_types')
