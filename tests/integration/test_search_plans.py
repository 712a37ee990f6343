"""Selective searches stay index lookups on PostgreSQL, whatever the tables' size: a reference
search reads the index range of its target, not every row of the parameter; an email,
telecom or typed-identifier search reads the few rows it matches, not every patient or
telecom (each of these read them all at 1,000,000 patients, taking 2-14 s)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from fhir_server.search.query import parse_search
from fhir_server.settings import Settings
from mappings.audit_event import AUDIT_EVENT_SEARCH
from mappings.patient_search import PATIENT_SEARCH
from storage.audit_tables import AUDIT_EVENT_CHILD_TABLES, audit_events
from storage.crypto import load_cipher
from storage.keyset import SortKey, order_by
from storage.search_sql import SearchSql
from storage.tables import (
    PATIENT_CHILD_TABLES,
    patient_identifier_types,
    patient_identifiers,
    patient_telecoms,
    patients,
)
from tests.conftest import empty_tables

ROWS = 5000
PATIENTS = 3000
MR = "http://terminology.hl7.org/CodeSystem/v2-0203"
BASE = "http://testserver/fhir"


def _nodes(plan: Any) -> Iterator[dict[str, Any]]:
    """Every node of a JSON plan (EXPLAIN (FORMAT JSON)), depth first."""
    if isinstance(plan, dict):
        yield plan
        for value in plan.values():
            yield from _nodes(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from _nodes(value)


def _index_conditions(plan: Any) -> list[str]:
    """Every ``Index Cond`` and ``Recheck Cond`` of a JSON plan."""
    return [str(node[key]) for node in _nodes(plan)
            for key in ("Index Cond", "Recheck Cond") if key in node]


def _postgres_sql(statement: Any) -> str:
    """The statement as PostgreSQL SQL with its values inline (for EXPLAIN)."""
    return str(statement.compile(dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
                                 compile_kwargs={"literal_binds": True}))


def _audit_search_sql(settings: Settings, query: str) -> str:
    compiler = SearchSql("AuditEvent", audit_events, AUDIT_EVENT_CHILD_TABLES,
                         owner="resource_id", cipher=load_cipher(settings),
                         phone_region="US", parameters=AUDIT_EVENT_SEARCH)
    name, _, value = query.partition("=")
    request = parse_search([(name, value)], {"AuditEvent": AUDIT_EVENT_SEARCH},
                           resource_type="AuditEvent", strict=True, default_count=20,
                           max_count=1000, base_url=BASE)
    statement = select(audit_events.c.id).where(
        *(compiler.condition(clause) for clause in request.clauses))
    return _postgres_sql(statement)


@pytest.mark.parametrize("query", ["patient=Patient/{target}", "patient={target}",
                                   f"entity={BASE}/Patient/{{target}}",
                                   "entity:Patient={target}",
                                   "entity=http://ehr.example.org/fhir/Patient/{target}"])
def test_reference_search_is_an_index_range_on_the_target(
        backend: str, engine: Engine, settings: Settings, query: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL plans")
    empty_tables(engine)
    targets = [str(uuid.uuid4()) for _ in range(ROWS)]
    rows = [{"resource_id": f"event-{number // 20}", "position": number % 20,
             "param": "entity", "target_type": "Patient", "target_id": target,
             "url": f"Patient/{target}"} for number, target in enumerate(targets)]
    with engine.begin() as connection:
        connection.execute(insert(AUDIT_EVENT_CHILD_TABLES["references"]), rows)
        connection.execute(text("ANALYZE audit_events_references"))
    sql = _audit_search_sql(settings, query.format(target=targets[7]))
    with engine.connect() as connection:
        raw = connection.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()
    plan = json.loads(raw) if isinstance(raw, str) else raw
    conditions = _index_conditions(plan)
    assert any(targets[7] in condition for condition in conditions), (sql, plan)
    empty_tables(engine)


def _patient_page_sql(settings: Settings, query: str) -> str:
    """The first page's statement as the search runs it (live patients in id order)."""
    compiler = SearchSql("Patient", patients, PATIENT_CHILD_TABLES, owner="patient_id",
                         cipher=load_cipher(settings), phone_region="US",
                         parameters=PATIENT_SEARCH)
    name, _, value = query.partition("=")
    request = parse_search([(name, value)], {"Patient": PATIENT_SEARCH},
                           resource_type="Patient", strict=True, default_count=20,
                           max_count=1000, base_url=BASE)
    statement = (select(patients.c.id)
                 .where(patients.c.deleted_at.is_(None), patients.c.merged_into_id.is_(None),
                        *(compiler.condition(clause) for clause in request.clauses))
                 .order_by(patients.c.id).limit(21))
    return _postgres_sql(statement)


def _rows_scanned(plan: Any) -> int:
    """Rows every scan node of an EXPLAIN ANALYZE plan read (kept or filtered out), over all
    its loops."""
    return sum(sum(int(node.get(key, 0)) for key in (
                   "Actual Rows", "Rows Removed by Filter", "Rows Removed by Index Recheck"))
               * int(node.get("Actual Loops", 1))
               for node in _nodes(plan)
               if "Scan" in str(node.get("Node Type", "")) and "Relation Name" in node)


@pytest.mark.parametrize("query", [
    "email=Person.1234@Example.org", "telecom=person.1234@example.org",
    "telecom=email|PERSON.1234@example.org", f"identifier:of-type={MR}|MR|MRN-1234",
    "identifier=MRN-1234", "phone=617-555-1234"])
def test_selective_patient_search_reads_only_its_matches(
        backend: str, engine: Engine, settings: Settings, query: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL plans")
    empty_tables(engine)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [f"p{number:05d}" for number in range(PATIENTS)]
    with engine.begin() as connection:
        connection.execute(insert(patients), [
            {"id": patient, "version_id": 1, "last_updated": moment, "status": "active"}
            for patient in ids])
        connection.execute(insert(patient_telecoms), [
            row for number, patient in enumerate(ids) for row in (
                {"patient_id": patient, "position": 0, "system": "email",
                 "value": f"person.{number}@example.org", "value_e164": None},
                {"patient_id": patient, "position": 1, "system": "phone",
                 "value": f"617-555-{number:04d}", "value_e164": f"+1617555{number:04d}"})])
        connection.execute(insert(patient_identifiers), [
            {"patient_id": patient, "position": 0, "system": "urn:prm:mrn",
             "value": f"MRN-{number}"} for number, patient in enumerate(ids)])
        connection.execute(insert(patient_identifier_types), [
            {"patient_id": patient, "position": 0, "identifier_position": 0, "system": MR,
             "code": "MR"} for patient in ids])
        for table in ("patients", "patient_telecoms", "patient_identifiers",
                      "patient_identifier_types"):
            connection.execute(text(f"ANALYZE {table}"))
    sql = _patient_page_sql(settings, query)
    with engine.connect() as connection:
        raw = connection.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
        found = [row[0] for row in connection.execute(text(sql))]
    plan = json.loads(raw) if isinstance(raw, str) else raw
    assert found == ["p01234"], sql
    assert _rows_scanned(plan) <= 10, (sql, plan)
    empty_tables(engine)


@pytest.mark.parametrize("forward", [True, False])
def test_newest_first_page_reads_the_last_updated_index(
        backend: str, engine: Engine, forward: bool) -> None:
    """``_sort=-_lastUpdated`` (and its pages backwards): the index on last_updated, read in
    either direction, serves it; a NULLS clause on the NOT NULL column made it sort them all."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL plans")
    empty_tables(engine)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(insert(patients), [
            {"id": f"p{number:05d}", "version_id": 1, "status": "active",
             "last_updated": start + timedelta(seconds=number // 3)}
            for number in range(PATIENTS * 10)])
        connection.execute(text("ANALYZE patients"))
    keys = [SortKey(patients.c.last_updated, True), SortKey(patients.c.id, False)]
    statement = (select(patients.c.id).where(patients.c.deleted_at.is_(None))
                 .order_by(*order_by(keys, forward)).limit(21))
    sql = _postgres_sql(statement)
    with engine.connect() as connection:
        raw = connection.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
        found = [row[0] for row in connection.execute(text(sql))]
    plan = json.loads(raw) if isinstance(raw, str) else raw
    newest = PATIENTS * 10 - 1
    assert found[:3] == ([f"p{newest - 2:05d}", f"p{newest - 1:05d}", f"p{newest:05d}"]
                         if forward else ["p00002", "p00001", "p00000"])  # exact reverse
    assert _rows_scanned(plan) <= 100, (sql, plan)
    empty_tables(engine)
