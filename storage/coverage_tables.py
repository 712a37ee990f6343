"""The PRM's insurance: ``patient_insurances``, one row per policy a patient holds in one of the
PRM's three slots (primary, secondary, tertiary), served as FHIR Coverage, with token and
reference child tables for search."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from storage.media_tables import search_child_tables
from storage.tables import ID_LENGTH, UtcDateTime, metadata

patient_insurances = Table(
    "patient_insurances",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime()),
    Column("status", String(32), nullable=False),
    Column("coverage_order", Integer),
    Column("patient_id", String(ID_LENGTH)),
    Column("insurance_type", String(16)),
    Column("provider_name", Text),
    Column("policy_number", Text),
    Column("group_number", Text),
    Column("type_code", Text),
    Column("payor_search", Text),
    Column("payor_exact", Text),
    Column("class_search", Text),
    Column("class_exact", Text),
    Column("dependent_search", Text),
    Column("dependent_exact", Text),
    Column("remainder", Text),
    Index("ix_patient_insurances_patient_id", "patient_id"),
    Index("ix_patient_insurances_last_updated", "last_updated"),
)
"""The PRM's insurance (FHIR Coverage): ``insurance_type`` primary | secondary | tertiary from
Coverage.order 1 | 2 | 3, the provider from payor's display, policy and group numbers."""

PATIENT_INSURANCE_CHILD_TABLES = search_child_tables("patient_insurances")
