"""audit events: each Patient stored once among the reference rows, no foreign keys on the rows

AuditEvent ``patient`` is now served by the ``entity`` and ``agent`` rows that point at a
Patient (R4: agent.who | entity.what that are Patients), so the ``patient`` copies of the
entity rows go. The token and reference rows lose their foreign key to ``audit_events``: they
are written in the same statement as their event and never deleted, and the per-row key
check was a third of the cost of storing a search's AuditEvent.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_CHILD_TABLES = ('audit_events_references', 'audit_events_tokens')


def _foreign_key(table: str) -> str:
    return f'fk_{table}_resource_id_audit_events'


def upgrade() -> None:
    op.execute("DELETE FROM audit_events_references WHERE param = 'patient'")
    for table in _CHILD_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(_foreign_key(table), type_='foreignkey')


def downgrade() -> None:
    for table in _CHILD_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(_foreign_key(table), 'audit_events', ['resource_id'],
                                        ['id'], ondelete='CASCADE')
    # the patient copies of the Patient entity rows, numbered after each event's last row
    op.execute(sa.text(
        "INSERT INTO audit_events_references "
        "(resource_id, position, param, target_type, target_id, url) "
        "SELECT r.resource_id, r.position + 1 + (SELECT MAX(o.position) FROM "
        "audit_events_references o WHERE o.resource_id = r.resource_id), "
        "'patient', r.target_type, r.target_id, r.url FROM audit_events_references r "
        "WHERE r.param = 'entity' AND r.target_type = 'Patient'"))
