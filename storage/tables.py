"""SQLAlchemy 2 tables of the PRM patient model and the generic version history.

The ``patients`` table keeps the PRM's own columns; a patient's repeating elements live in
child tables (identifiers, names, telecoms, addresses), each row keyed by patient and ``position``
(the element's index in the FHIR array) and an ``extra`` JSON text holding the parts of the element
that have no column. ``patients.remainder`` does the same for top-level elements.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    func,
    text,
)
from sqlalchemy.engine import Dialect


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID_LENGTH = 64

def _partial_index(name: str, column_name: str) -> Index:
    """An index of the rows where the column is set (most rows have no SSN hash, no E.164)."""
    condition = text(f"{column_name} IS NOT NULL")
    return Index(name, column_name, postgresql_where=condition, sqlite_where=condition)


SORT_TEXT = Text().with_variant(Text(collation="C"), "postgresql")
"""Normalised sort keys: code point order on PostgreSQL as on SQLite (whatever the database's
collation), so a sort gives the same order on both."""

NAME_SORTS = ("family", "given", "name")
"""``_sort`` keys of the name parameters: ``<name>_sort`` columns of normalised text."""

HAYSTACKS = ("name", "family", "given", "address", "address_city", "address_state",
             "address_postalcode", "address_country")
"""String search parameters stored as normalised and exact ``|field|`` haystack columns."""

patients = Table(
    "patients",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime()),
    Column("merged_into_id", String(ID_LENGTH)),
    Column("mrn", Text, unique=True),
    Column("legal_name", Text),
    Column("family_name", Text),
    Column("given_name", Text),
    Column("birth_date", Date),
    Column("birth_date_precision", String(5)),
    Column("gender", String(16)),
    Column("active", Boolean),
    Column("deceased_boolean", Boolean),
    Column("deceased_datetime", Text),
    Column("status", String(16), nullable=False),
    Column("primary_phone", String(32)),
    Column("email", Text),
    Column("address_line", Text),
    Column("address_city", Text),
    Column("address_state", Text),
    Column("address_postal_code", Text),
    Column("address_country", Text),
    Column("race_code", Text),
    Column("race_display", Text),
    Column("ethnicity_code", Text),
    Column("ethnicity_display", Text),
    Column("preferred_language", Text),
    Column("emergency_contact_name", Text),
    Column("emergency_contact_relationship", Text),
    Column("emergency_contact_phone", Text),
    Column("ssn_ciphertext", Text),
    Column("ssn_hash", String(64)),
    Column("insurance_types", Text),
    Column("remainder", Text),
    *(Column(f"{name}_{kind}", Text)
      for name in HAYSTACKS for kind in ("search", "exact")),
    Column("phonetic_search", Text),
    *(Column(f"{name}_sort", SORT_TEXT) for name in NAME_SORTS),
    Column("birth_date_end", Date),
    Column("death_low", UtcDateTime()),
    Column("death_high", UtcDateTime()),
    Index("ix_patients_family_name_birth_date", "family_name", "birth_date"),
    Index("ix_patients_birth_date", "birth_date", "birth_date_end"),
    _partial_index("ix_patients_ssn_hash", "ssn_hash"),
    Index("ix_patients_last_updated", "last_updated"),
    Index("ix_patients_family_sort", "family_sort", "given_sort", "id"),
)


def _child_fk() -> Column[str]:
    return Column(
        "patient_id",
        String(ID_LENGTH),
        ForeignKey("patients.id", ondelete="CASCADE"),
        primary_key=True,
    )


patient_identifiers = Table(
    "patient_identifiers",
    metadata,
    _child_fk(),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("use", Text),
    Column("system", Text),
    Column("value", Text),
    Column("value_hash", String(64)),
    Column("value_ciphertext", Text),
    Column("extra", Text),
    Index("ix_patient_identifiers_value_system", "value", "system"),
    _partial_index("ix_patient_identifiers_value_hash", "value_hash"),
)

patient_identifier_types = Table(
    "patient_identifier_types",
    metadata,
    _child_fk(),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("identifier_position", Integer, nullable=False),
    Column("system", Text, nullable=False),
    Column("code", Text, nullable=False),
)
"""Each coding (system and code) of each identifier's type, for ``identifier:of-type``;
derived on write, never read back (the type itself stays in the identifier's ``extra``)."""

patient_names = Table(
    "patient_names",
    metadata,
    _child_fk(),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("use", Text),
    Column("text", Text),
    Column("family", Text),
    Column("given", Text),
    Column("prefix", Text),
    Column("suffix", Text),
    Column("extra", Text),
)

patient_telecoms = Table(
    "patient_telecoms",
    metadata,
    _child_fk(),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("system", Text),
    Column("value", Text),
    Column("value_e164", String(32)),
    Column("use", Text),
    Column("rank", Integer),
    Column("extra", Text),
    _partial_index("ix_patient_telecoms_value_e164", "value_e164"),
)
Index("ix_patient_telecoms_value_lower", func.lower(patient_telecoms.c.value))
"""Email and unparsed telecom values are searched case-insensitively (migration 0016)."""

patient_addresses = Table(
    "patient_addresses",
    metadata,
    _child_fk(),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("use", Text),
    Column("type", Text),
    Column("text", Text),
    Column("line", Text),
    Column("city", Text),
    Column("district", Text),
    Column("state", Text),
    Column("postal_code", Text),
    Column("country", Text),
    Column("extra", Text),
)

patient_tokens = Table(
    "patient_tokens",
    metadata,
    _child_fk(),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("param", String(64), nullable=False),
    Column("system", Text),
    Column("code", Text),
    Column("text_norm", Text),
    Index("ix_patient_tokens_param_code", "param", "code"),
)

patient_references = Table(
    "patient_references",
    metadata,
    _child_fk(),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("param", String(64), nullable=False),
    Column("target_type", String(64)),
    Column("target_id", String(ID_LENGTH)),
    Column("url", Text),
    Index("ix_patient_references_param_target", "param", "target_id", "target_type"),
)

patient_match_keys = Table(
    "patient_match_keys",
    metadata,
    _child_fk(),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("key", String(200), nullable=False),
    Index("ix_patient_match_keys_key", "key", "patient_id"),
)
"""Blocking keys of Patient matching (``fhir_server.matching.keys``), derived on write."""

patient_merges = Table(
    "patient_merges",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("source_id", String(ID_LENGTH), nullable=False),
    Column("target_id", String(ID_LENGTH), nullable=False),
    Column("status", String(16), nullable=False),
    Column("merged_at", UtcDateTime(), nullable=False),
    Column("undone_at", UtcDateTime()),
    Column("requested_by", Text),
    Column("detail", Text, nullable=False),
    Index("ix_patient_merges_source_id", "source_id"),
    Index("ix_patient_merges_target_id", "target_id"),
)
"""Every $merge: who, when, and what moved, with the versions before and after (for undo)."""

resource_history = Table(
    "resource_history",
    metadata,
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(ID_LENGTH), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", UtcDateTime(), nullable=False),
    Column("method", String(8), nullable=False),
    Column("snapshot", Text),
    PrimaryKeyConstraint("resource_type", "resource_id", "version_id"),
    Index("ix_resource_history_type_last_updated", "resource_type", "last_updated"),
)

PATIENT_CHILD_TABLES: dict[str, Table] = {
    "identifiers": patient_identifiers,
    "identifier_types": patient_identifier_types,
    "names": patient_names,
    "telecoms": patient_telecoms,
    "addresses": patient_addresses,
    "tokens": patient_tokens,
    "references": patient_references,
    "match_keys": patient_match_keys,
}
