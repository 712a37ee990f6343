"""patient telecoms: an index on lower(value)

Email searches (``email=``, ``telecom=`` without a system) compare ``lower(value)``, which no
index served: at 1,000,000 patients one email search read every telecom row (14 s).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_patient_telecoms_value_lower', 'patient_telecoms',
                    [sa.text('lower(value)')], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        # statistics of the new expression: without them the planner guessed thousands of
        # matches for one email and still walked every patient
        op.execute('ANALYZE patient_telecoms')


def downgrade() -> None:
    op.drop_index('ix_patient_telecoms_value_lower', table_name='patient_telecoms')
