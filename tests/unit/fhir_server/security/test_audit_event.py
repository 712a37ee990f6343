"""The AuditEvent of an access: codings, agents, entities, and no SSN in what it records."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

from fhir_server.security.audit import Access, audit_event, redacted, redacted_query
from fhir_server.security.scopes import ScopeSet
from fhir_server.security.tokens import ANONYMOUS, Principal
from fhir_server.validation.resource import validate_resource

MOMENT = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
CLERK = Principal(scopes=ScopeSet(), subject="clerk-7", client_id="front-desk",
                  issuer="https://issuer")


def test_ssn_shaped_values_are_blanked_but_not_phones_or_dates() -> None:
    assert redacted("identifier=123-45-6789") == "identifier=*********"
    assert redacted("ssn 123456789 given") == "ssn ********* given"
    assert redacted("+16174952000 and 2024-05-01 and A-1001") == \
        "+16174952000 and 2024-05-01 and A-1001"
    query = "identifier=http%3A%2F%2Fhl7.org%2Ffhir%2Fsid%2Fus-ssn%7C123%2D45%2D6789&family=Li"
    assert "6789" not in redacted_query(query)
    assert "family=Li" in redacted_query(query)


def test_search_event_is_valid_r4_with_agents_entities_and_query() -> None:
    access = Access(subtype="search-type", resource_type="Patient",
                    entities=("Patient/a", "DocumentReference/d"), patients=frozenset({"a"}),
                    query="identifier=123456789&family=Li")
    event = audit_event(access, CLERK, address="10.0.0.5", recorded=MOMENT)
    validate_resource(event, "AuditEvent")
    assert event["action"] == "R" and event["outcome"] == "0"
    assert event["subtype"][0] == {"system": "http://hl7.org/fhir/restful-interaction",
                                   "code": "search-type"}
    assert event["agent"][0]["altId"] == "clerk-7"
    assert event["agent"][0]["network"] == {"address": "10.0.0.5", "type": "2"}
    assert event["agent"][1]["who"]["identifier"]["value"] == "front-desk"
    query = next(entity["query"] for entity in event["entity"] if "query" in entity)
    assert base64.b64decode(query).decode() == "identifier=%2A%2A%2A%2A%2A%2A%2A%2A%2A&family=Li"


def test_operation_failure_event() -> None:
    access = Access(subtype="$merge", resource_type="Patient", entities=("Patient/a",),
                    outcome="4", detail="Patient/a has SSN 123-45-6789 already merged")
    event = audit_event(access, ANONYMOUS, address=None, recorded=MOMENT)
    validate_resource(event, "AuditEvent")
    assert event["action"] == "E"
    assert event["subtype"][0]["system"] == "urn:prm:fhir:operation"
    assert "6789" not in event["outcomeDesc"]
    assert event["agent"][0]["who"] == {"display": "unauthenticated caller"}


def test_event_ids_are_uuid7_in_the_order_events_were_made() -> None:
    """Time-ordered ids keep the audit tables' key inserts at one end of their indexes."""
    ids = [Access(subtype="read", resource_type="Patient").event_id for _ in range(500)]
    assert all(uuid.UUID(event_id).version == 7 for event_id in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
