"""A reference search reads the index range of the one target, not every row of the parameter
(PostgreSQL plans): a search of a patient's AuditEvents among thousands of reference rows
must be an index lookup on the target id, whatever the table's size."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from fhir_server.search.query import parse_search
from fhir_server.settings import Settings
from mappings.audit_event import AUDIT_EVENT_SEARCH
from storage.audit_tables import AUDIT_EVENT_CHILD_TABLES, audit_events
from storage.crypto import load_cipher
from storage.search_sql import SearchSql
from tests.conftest import empty_tables

ROWS = 5000
BASE = "http://testserver/fhir"


def _index_conditions(plan: Any) -> list[str]:
    """Every ``Index Cond`` and ``Recheck Cond`` of a JSON plan."""
    found: list[str] = []
    if isinstance(plan, dict):
        found += [str(plan[key]) for key in ("Index Cond", "Recheck Cond") if key in plan]
        for value in plan.values():
            found += _index_conditions(value)
    elif isinstance(plan, list):
        for value in plan:
            found += _index_conditions(value)
    return found


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
    return str(statement.compile(dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
                                 compile_kwargs={"literal_binds": True}))


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
