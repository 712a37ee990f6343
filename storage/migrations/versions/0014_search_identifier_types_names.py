"""search: identifier:of-type over every type coding, punctuation-insensitive string search,
normalised name sort keys

- ``patient_identifier_types``: one row per coding of each Patient identifier's type (was the
  first coding only, in ``patient_identifiers.type_system/type_code``, now dropped); filled
  from each identifier's ``extra`` JSON, where its ``type`` is kept.
- Token rows ``<param>:of-type`` for the Identifier parameters of DocumentReference,
  Communication, CommunicationRequest and Coverage, filled from their ``remainder`` JSON.
- Normalised haystacks (``*_search``) re-derived: apostrophes dropped, other punctuation a
  word break, each word searchable (``mappings.search_text``); Patient name and address
  parameters and ``phonetic_search`` from the name and address rows, DocumentReference
  ``description``, Coverage ``payor``/``class``/``dependent`` from the stored resource.
- ``patients.family_sort``, ``given_sort``, ``name_sort`` (code point order on PostgreSQL too)
  from the name rows, with an index for ``_sort=family,given``.

Derived values are computed with this release's mapping code (``mappings``), so migrated rows
hold exactly what a new write would.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 12:00:00
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

from mappings.coverage import search_haystacks
from mappings.elements import join_element, load_json
from mappings.patient import ADDRESS_PLAN, NAME_PLAN
from mappings.patient_search import search_columns
from mappings.search_rows import TokenRows, listed
from mappings.search_text import haystack
from storage.tables import HAYSTACKS, NAME_SORTS, SORT_TEXT

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

BATCH = 1000
PATIENT_COLUMNS = (*(f"{name}_search" for name in HAYSTACKS), "phonetic_search",
                   *(f"{name}_sort" for name in NAME_SORTS))
IDENTIFIER_PARAMS: dict[str, dict[str, Callable[[dict[str, Any]], list[Any]]]] = {
    "media_assets": {"identifier": lambda r: [r.get("masterIdentifier"),
                                              *listed(r.get("identifier"))]},
    "outbound_notifications": {"identifier": lambda r: listed(r.get("identifier"))},
    "notification_requests": {"identifier": lambda r: listed(r.get("identifier")),
                              "group-identifier": lambda r: listed(r.get("groupIdentifier"))},
    "patient_insurances": {"identifier": lambda r: listed(r.get("identifier"))},
}
"""Per main table, the Identifier parameters and where their values are in the resource."""


def upgrade() -> None:
    op.create_table(
        'patient_identifier_types',
        sa.Column('patient_id', sa.String(length=64), nullable=False),
        sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('identifier_position', sa.Integer(), nullable=False),
        sa.Column('system', sa.Text(), nullable=False),
        sa.Column('code', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'],
                                name=op.f('fk_patient_identifier_types_patient_id_patients'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('patient_id', 'position',
                                name=op.f('pk_patient_identifier_types')))
    with op.batch_alter_table('patient_identifiers', schema=None) as batch_op:
        batch_op.drop_column('type_system')
        batch_op.drop_column('type_code')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        for name in NAME_SORTS:
            batch_op.add_column(sa.Column(f'{name}_sort', SORT_TEXT, nullable=True))
        batch_op.create_index('ix_patients_family_sort', ['family_sort', 'given_sort', 'id'],
                              unique=False)
    bind = op.get_bind()
    _identifier_types(bind)
    _patients(bind)
    _descriptions(bind)
    _coverages(bind)
    for table, params in IDENTIFIER_PARAMS.items():
        _of_type_rows(bind, table, params)


def downgrade() -> None:
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index('ix_patients_family_sort')
        for name in NAME_SORTS:
            batch_op.drop_column(f'{name}_sort')
    with op.batch_alter_table('patient_identifiers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('type_system', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('type_code', sa.Text(), nullable=True))
    op.drop_table('patient_identifier_types')
    for table in IDENTIFIER_PARAMS:
        op.execute(sa.text(f"DELETE FROM {table}_tokens WHERE param LIKE :typed")
                   .bindparams(typed="%:of-type"))


def _batches(bind: sa.Connection, statement: str) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``statement`` (ordered by its first column, the resource id) in batches."""
    after = ""
    while True:
        rows = [tuple(row) for row in bind.execute(
            sa.text(statement + " AND id > :after ORDER BY id LIMIT :n"),
            {"after": after, "n": BATCH})]
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _identifier_types(bind: sa.Connection) -> None:
    rows = []
    counts: dict[str, int] = {}
    for patient_id, position, extra in bind.execute(sa.text(
            "SELECT patient_id, position, extra FROM patient_identifiers "
            "WHERE extra IS NOT NULL ORDER BY patient_id, position")):
        codings = ((load_json(extra) or {}).get("type") or {}).get("coding") or []
        for coding in codings:
            if isinstance(coding, dict) and coding.get("system") and coding.get("code"):
                number = counts.get(patient_id, 0)
                counts[patient_id] = number + 1
                rows.append({"patient_id": patient_id, "position": number,
                             "identifier_position": position, "system": coding["system"],
                             "code": coding["code"]})
    if rows:
        bind.execute(sa.text(
            "INSERT INTO patient_identifier_types (patient_id, position, identifier_position,"
            " system, code) VALUES (:patient_id, :position, :identifier_position, :system,"
            " :code)"), rows)


def _children(bind: sa.Connection, table: str, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {patient_id: [] for patient_id in ids}
    statement = sa.text(f"SELECT * FROM {table} WHERE patient_id IN :ids ORDER BY patient_id,"
                        " position").bindparams(sa.bindparam("ids", expanding=True))
    for row in bind.execute(statement, {"ids": ids}):
        values = dict(row._mapping)
        grouped[values["patient_id"]].append(values)
    return grouped


def _patients(bind: sa.Connection) -> None:
    assigned = ", ".join(f"{column} = :{column}" for column in PATIENT_COLUMNS)
    update = sa.text(f"UPDATE patients SET {assigned} WHERE id = :id")
    for rows in _batches(bind, "SELECT id FROM patients WHERE 1 = 1"):
        ids = [row[0] for row in rows]
        names = _children(bind, "patient_names", ids)
        addresses = _children(bind, "patient_addresses", ids)
        values = []
        for patient_id in ids:
            resource = {"name": [join_element(row, NAME_PLAN) for row in names[patient_id]],
                        "address": [join_element(row, ADDRESS_PLAN)
                                    for row in addresses[patient_id]]}
            columns = search_columns(resource)
            values.append({"id": patient_id,
                           **{column: columns[column] for column in PATIENT_COLUMNS}})
        bind.execute(update, values)


def _descriptions(bind: sa.Connection) -> None:
    update = sa.text("UPDATE media_assets SET description_search = :value WHERE id = :id")
    for rows in _batches(bind, "SELECT id, description FROM media_assets WHERE "
                               "description IS NOT NULL"):
        bind.execute(update, [{"id": row[0], "value": haystack([row[1]], normalised=True)}
                              for row in rows])


def _coverages(bind: sa.Connection) -> None:
    columns = ("payor_search", "class_search", "dependent_search")
    update = sa.text(f"UPDATE patient_insurances SET "
                     f"{', '.join(f'{c} = :{c}' for c in columns)} WHERE id = :id")
    for rows in _batches(bind, "SELECT id, remainder FROM patient_insurances WHERE 1 = 1"):
        values = []
        for resource_id, remainder in rows:
            derived = search_haystacks(load_json(remainder) or {})
            values.append({"id": resource_id, **{c: derived[c] for c in columns}})
        bind.execute(update, values)


def _of_type_rows(bind: sa.Connection, table: str,
                  params: dict[str, Callable[[dict[str, Any]], list[Any]]]) -> None:
    """``:of-type`` token rows after each resource's existing token rows."""
    insert = sa.text(f"INSERT INTO {table}_tokens (resource_id, position, param, system, code,"
                     " text_norm) VALUES (:resource_id, :position, :param, :system, :code,"
                     " :text_norm)")
    for rows in _batches(bind, f"SELECT id, remainder FROM {table} WHERE 1 = 1"):
        ids = [row[0] for row in rows]
        statement = sa.text(f"SELECT resource_id, max(position) FROM {table}_tokens WHERE "
                            "resource_id IN :ids GROUP BY resource_id").bindparams(
            sa.bindparam("ids", expanding=True))
        last: dict[str, int] = {str(resource_id): int(position) for resource_id, position
                                in bind.execute(statement, {"ids": ids})}
        values = []
        for resource_id, remainder in rows:
            resource = load_json(remainder) or {}
            tokens = TokenRows()
            for param, identifiers in params.items():
                tokens.identifier(param, identifiers(resource))
            start = last.get(resource_id, -1) + 1
            typed = [row for row in tokens.rows if row["param"].endswith(":of-type")]
            values += [row | {"resource_id": resource_id, "position": start + number}
                       for number, row in enumerate(typed)]
        if values:
            bind.execute(insert, values)
