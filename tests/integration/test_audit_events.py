"""Every access is audited as an R4 AuditEvent: who (token subject and client), what, outcome
and source address; writes in their own transaction; the trail is searchable by auditors and
cannot be changed through the API."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from storage.audit_tables import AUDIT_EVENT_CHILD_TABLES, audit_events
from storage.tables import patients
from tests.factories import FHIR_JSON, PDF_BYTES, patient
from tests.tokens import TokenIssuer

AUDITOR = "user/AuditEvent.rs"


def _events(client: TestClient, issuer: TokenIssuer, query: str = "") -> list[dict[str, Any]]:
    bundle = client.get(f"/fhir/AuditEvent?_count=100{query}",
                        headers=issuer.headers(AUDITOR, subject="auditor")).json()
    return [entry["resource"] for entry in bundle.get("entry", [])]


def _subtypes(events: list[dict[str, Any]]) -> list[str]:
    return [event["subtype"][0]["code"] for event in events]


def test_create_read_search_are_audited_with_who_what_and_outcome(
        secured_client: TestClient, token_issuer: TokenIssuer) -> None:
    headers = FHIR_JSON | token_issuer.headers("user/Patient.crs", subject="clerk-7",
                                               client_id="front-desk")
    created = secured_client.post("/fhir/Patient", json=patient(), headers=headers).json()
    assert secured_client.get(f"/fhir/Patient/{created['id']}", headers=headers).status_code == 200
    assert secured_client.get("/fhir/Patient?family=Rivera", headers=headers).status_code == 200
    events = _events(secured_client, token_issuer, f"&patient=Patient/{created['id']}")
    by_subtype = {event["subtype"][0]["code"]: event for event in events}
    assert set(by_subtype) == {"create", "read", "search-type"}
    assert by_subtype["create"]["action"] == "C"
    assert by_subtype["read"]["action"] == "R"
    read = by_subtype["read"]
    assert read["type"]["code"] == "rest"
    assert read["outcome"] == "0"
    assert read["agent"][0]["altId"] == "clerk-7"
    assert read["agent"][0]["network"]["address"]
    assert read["agent"][1]["who"]["identifier"]["value"] == "front-desk"
    assert {"reference": f"Patient/{created['id']}"} in [e.get("what") for e in read["entity"]]
    search = by_subtype["search-type"]
    query = next(e["query"] for e in search["entity"] if "query" in e)
    assert base64.b64decode(query).decode() == "family=Rivera"


def test_refused_access_is_audited_as_a_failure(secured_client: TestClient,
                                                token_issuer: TokenIssuer) -> None:
    response = secured_client.get("/fhir/Patient/nobody",
                                  headers=token_issuer.headers("user/Binary.r", subject="eve"))
    assert response.status_code == 403
    events = _events(secured_client, token_issuer, "&altid=eve")
    assert len(events) == 1
    assert events[0]["outcome"] == "4"
    assert events[0]["entity"][0]["what"]["reference"] == "Patient/nobody"


def test_refused_write_changes_nothing_and_is_audited_as_a_failure(
        secured_client: TestClient, token_issuer: TokenIssuer, engine: Engine) -> None:
    creator = FHIR_JSON | token_issuer.headers("user/Patient.c", subject="creator")
    created = secured_client.post("/fhir/Patient", json=patient(), headers=creator).json()
    headers = FHIR_JSON | token_issuer.headers("user/Patient.u", subject="writer")
    stale = secured_client.put(f"/fhir/Patient/{created['id']}",
                               json=created | {"gender": "male"},
                               headers=headers | {"If-Match": 'W/"7"'})
    assert stale.status_code == 412
    with engine.connect() as connection:
        assert connection.execute(select(patients.c.version_id)).scalar() == 1
    events = _events(secured_client, token_issuer, "&altid=writer")
    assert [(event["action"], event["outcome"]) for event in events] == [("U", "4")]


def test_write_and_its_event_commit_together(secured_client: TestClient,
                                             token_issuer: TokenIssuer, engine: Engine) -> None:
    headers = FHIR_JSON | token_issuer.headers("user/Patient.cud", subject="writer")
    created = secured_client.post("/fhir/Patient", json=patient(), headers=headers).json()
    secured_client.put(f"/fhir/Patient/{created['id']}", json=created, headers=headers)
    secured_client.delete(f"/fhir/Patient/{created['id']}", headers=headers)
    events = _events(secured_client, token_issuer, f"&entity=Patient/{created['id']}")
    assert sorted(event["action"] for event in events) == ["C", "D", "U"]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(audit_events)).scalar() >= 3


def test_audit_search_by_action_date_and_agent(secured_client: TestClient,
                                               token_issuer: TokenIssuer) -> None:
    headers = FHIR_JSON | token_issuer.headers("user/Patient.cr", subject="clerk")
    created = secured_client.post("/fhir/Patient", json=patient(), headers=headers).json()
    secured_client.get(f"/fhir/Patient/{created['id']}", headers=headers)
    assert _subtypes(_events(secured_client, token_issuer, "&altid=clerk&action=C")) == ["create"]
    assert len(_events(secured_client, token_issuer, "&altid=clerk&date=ge2020-01-01")) == 2
    assert _events(secured_client, token_issuer, "&altid=clerk&date=lt2020-01-01") == []


def test_audit_patient_search_covers_entities_and_agents_stored_once(
        secured_client: TestClient, token_issuer: TokenIssuer, engine: Engine) -> None:
    """R4 AuditEvent ``patient``: agent.who or entity.what that is a Patient; each Patient of
    an event is one reference row (the ``entity`` or ``agent`` row), not a second copy."""
    clerk = FHIR_JSON | token_issuer.headers("user/Patient.crs", subject="clerk")
    seen = secured_client.post("/fhir/Patient", json=patient(), headers=clerk).json()
    viewer = secured_client.post("/fhir/Patient", json=patient(), headers=clerk).json()
    as_patient = token_issuer.headers("patient/Patient.rs", subject="portal-user",
                                      patient=viewer["id"], fhirUser=f"Patient/{viewer['id']}")
    # a search that finds nothing: the event's only Patient is its agent, the portal user
    found = secured_client.get("/fhir/Patient?family=Nobody-Has-This-Name", headers=as_patient)
    assert found.status_code == 200 and "entry" not in found.json()
    viewer_events = _events(secured_client, token_issuer,
                            f"&patient={viewer['id']}&altid=portal-user")
    assert _subtypes(viewer_events) == ["search-type"]
    assert not [e for e in viewer_events[0].get("entity", []) if "what" in e]
    assert {"reference": f"Patient/{viewer['id']}"} in [a.get("who")
                                                         for a in viewer_events[0]["agent"]]
    assert _events(secured_client, token_issuer, f"&patient={seen['id']}&altid=portal-user") == []
    assert _subtypes(_events(secured_client, token_issuer,
                             f"&patient:Patient={seen['id']}&altid=clerk")) == ["create"]
    assert _events(secured_client, token_issuer, "&patient:missing=true&altid=clerk") == []
    included = secured_client.get(
        f"/fhir/AuditEvent?altid=clerk&patient={seen['id']}&_include=AuditEvent:patient",
        headers=token_issuer.headers(f"{AUDITOR} user/Patient.rs", subject="auditor")).json()
    assert sorted((e["search"]["mode"], e["resource"]["resourceType"])
                  for e in included["entry"]) == [("include", "Patient"), ("match", "AuditEvent")]
    with engine.connect() as connection:
        params = {row[0] for row in connection.execute(
            select(AUDIT_EVENT_CHILD_TABLES["references"].c.param))}
    assert "patient" not in params and "entity" in params


def test_audit_trail_cannot_be_changed(secured_client: TestClient,
                                       token_issuer: TokenIssuer) -> None:
    secured_client.get("/fhir/Patient", headers=token_issuer.headers("user/Patient.s"))
    event = _events(secured_client, token_issuer)[0]
    everything = FHIR_JSON | token_issuer.headers("user/AuditEvent.cruds")
    put = secured_client.put(f"/fhir/AuditEvent/{event['id']}", json=event, headers=everything)
    assert put.status_code == 405, put.text
    assert secured_client.delete(f"/fhir/AuditEvent/{event['id']}",
                                 headers=everything).status_code == 405
    assert secured_client.post("/fhir/AuditEvent", json=event,
                               headers=everything).status_code == 405
    read = secured_client.get(f"/fhir/AuditEvent/{event['id']}",
                              headers=token_issuer.headers(AUDITOR))
    assert read.json() == event


def test_operations_are_audited(secured_client: TestClient, token_issuer: TokenIssuer) -> None:
    headers = FHIR_JSON | token_issuer.headers("user/Patient.c user/Patient.$match",
                                               subject="matcher")
    secured_client.post("/fhir/Patient", json=patient(), headers=headers)
    response = secured_client.post("/fhir/Patient/$match", headers=headers, json={
        "resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient()}]})
    assert response.status_code == 200
    events = _events(secured_client, token_issuer, "&altid=matcher&action=E")
    assert _subtypes(events) == ["$match"]


def test_binary_bytes_and_signed_links_are_audited(secured_client: TestClient,
                                                  token_issuer: TokenIssuer) -> None:
    headers = token_issuer.headers("user/Binary.cr", subject="viewer")
    created = secured_client.post("/fhir/Binary", content=PDF_BYTES, headers=headers | {
        "Content-Type": "application/pdf", "X-Security-Context": "Patient/owner"})
    assert created.status_code == 201, created.text
    binary_id = created.json()["id"]
    assert secured_client.get(f"/fhir/Binary/{binary_id}", headers=headers).content == PDF_BYTES
    link = secured_client.get(f"/fhir/Binary/{binary_id}/$download-url", headers=headers).json()
    url = link["parameter"][0]["valueUrl"]
    assert secured_client.get(url[url.index("/download/"):]).content == PDF_BYTES
    events = _events(secured_client, token_issuer, f"&entity=Binary/{binary_id}")
    assert sorted(_subtypes(events)) == ["create", "read", "read", "vread"]
    assert all("Patient/owner" in str(event["entity"]) for event in events)
    by_link = next(event for event in events if event["subtype"][0]["code"] == "vread")
    assert "signed download link" in by_link["outcomeDesc"]
    assert _events(secured_client, token_issuer, "&patient=Patient/owner&subtype=vread")
