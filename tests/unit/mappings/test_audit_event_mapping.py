"""AuditEvent <-> rows: what is read back is byte for byte what was recorded, while the
remainder keeps each entity whose type and role follow from its reference as ``what`` alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from fhir_server.security.audit import Access, audit_event
from fhir_server.security.tokens import ANONYMOUS
from mappings.audit_event import AuditEventMapping

MAPPING = AuditEventMapping()
MOMENT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _search_event(patients: int) -> dict[str, Any]:
    ids = [str(uuid.uuid4()) for _ in range(patients)]
    return audit_event(Access("search-type", "Patient",
                              entities=tuple(f"Patient/{patient}" for patient in ids),
                              query="name=smi&_count=20"),
                       ANONYMOUS, address="203.0.113.9", recorded=MOMENT)


def _round_trip(event: dict[str, Any]) -> tuple[dict[str, Any], str]:
    rows = MAPPING.to_rows(event, resource_id=event["id"], version_id=1, last_updated=MOMENT)
    remainder = rows.main["remainder"]
    return MAPPING.to_resource(rows), remainder


@pytest.mark.parametrize("event", [
    _search_event(20),
    _search_event(0),
    audit_event(Access("read", "DocumentReference", entities=("DocumentReference/d-1",),
                       patients=frozenset({"p-1"})), ANONYMOUS, address=None, recorded=MOMENT),
    audit_event(Access("$merge", "Patient", entities=("Patient/a", "Patient/b"),
                       outcome="4", detail="refused"), ANONYMOUS, address=None, recorded=MOMENT),
], ids=["search-20", "search-empty", "read-with-patient", "operation-refused"])
def test_read_back_equals_recorded_byte_for_byte(event: dict[str, Any]) -> None:
    read, _ = _round_trip(event)
    assert orjson.dumps(read) == orjson.dumps(event)


def test_search_event_remainder_keeps_patients_as_references_only() -> None:
    event = _search_event(20)
    _, remainder = _round_trip(event)
    stored = orjson.loads(remainder)
    patients = [entity for entity in stored["entity"] if "what" in entity]
    assert len(patients) == 20
    assert all(list(entity) == ["what"] for entity in patients)
    assert stored["entity"][-1]["role"]["code"] == "24"  # the query entity kept whole
    assert len(remainder) * 2 < len(orjson.dumps(event))  # 2.5 kB instead of 6.6 kB


@pytest.mark.parametrize("entity", [
    {"what": {"reference": "Patient/p-1"},
     "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
     "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1",
              "display": "Patient"}},
    {"type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1",
              "display": "Person"}, "what": {"reference": "Patient/p-1"},
     "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1",
              "display": "Patient"}},
    {"what": {"identifier": {"value": "x"}}, "description": "no reference"},
    {"what": {"reference": "Patient/p-1"},
     "type": {"code": "1", "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
              "display": "Person"},
     "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1",
              "display": "Patient"}},
], ids=["other-codings", "other-key-order", "no-reference", "coding-key-order"])
def test_other_entities_are_kept_as_they_are(entity: dict[str, Any]) -> None:
    event = _search_event(1) | {"entity": [entity]}
    read, remainder = _round_trip(event)
    assert orjson.loads(remainder)["entity"] == [entity]
    assert orjson.dumps(read) == orjson.dumps(event)
