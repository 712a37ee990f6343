"""Communication and CommunicationRequest over the PRM's messaging tables, on SQLite and
PostgreSQL: the official examples round-trip, the PRM columns, a search table over every
parameter type, and a merge moving their references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from storage.messaging_tables import notification_requests, outbound_notifications
from tests.factories import FHIR_JSON, communication, communication_request, patient

EXAMPLES = ["Communication-example.json", "Communication-fm-attachment.json",
            "Communication-fm-solicited.json", "CommunicationRequest-example.json",
            "CommunicationRequest-fm-solicit.json"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_official_examples_round_trip(client: TestClient, shared_data: Path, name: str) -> None:
    example = json.loads((shared_data / "fhir-r4-examples" / name).read_text())
    path = f"/fhir/{example['resourceType']}/{example['id']}"
    response = client.put(path, json=example, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    read = client.get(path).json()
    assert read.pop("meta")["versionId"] == "1"
    example.pop("meta", None)
    assert read == example


def _put(client: TestClient, resource: dict[str, Any]) -> None:
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource,
                          headers=FHIR_JSON)
    assert response.status_code == 201, response.text


def _dataset(client: TestClient) -> None:
    _put(client, patient(id="p-1"))
    _put(client, patient(id="p-2", name=[{"family": "Nguyen", "given": ["Li"]}]))
    _put(client, communication_request(id="req-1"))
    _put(client, communication_request(
        id="req-2", status="completed", priority="urgent",
        identifier=[{"system": "urn:example:requests", "value": "req-2"}],
        medium=[{"coding": [{"system": "urn:prm:message-channel", "code": "email"}]}],
        subject={"reference": "Patient/p-2"}, recipient=[{"reference": "Patient/p-2"}],
        occurrenceDateTime=None, occurrencePeriod={"start": "2024-06-01", "end": "2024-06-30"},
        replaces=[{"reference": "CommunicationRequest/req-1"}]))
    _put(client, communication(id="msg-1"))
    _put(client, communication(
        id="msg-2", status="not-done", basedOn=[{"reference": "CommunicationRequest/req-2"}],
        identifier=[{"system": "urn:example:messages", "value": "msg-2"}],
        medium=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
                             "code": "PHONE"}]}],
        subject={"reference": "Patient/p-2"}, recipient=[{"reference": "Patient/p-2"}],
        sent=None, received="2024-06-03T10:00:00+02:00"))


CASES: list[tuple[str, set[str]]] = [
    ("CommunicationRequest?status=active", {"req-1"}),
    ("CommunicationRequest?priority=urgent", {"req-2"}),
    ("CommunicationRequest?priority:not=urgent", {"req-1"}),
    ("CommunicationRequest?medium=urn:prm:message-channel|email", {"req-2"}),
    ("CommunicationRequest?patient=p-1", {"req-1"}),
    ("CommunicationRequest?recipient=Patient/p-2", {"req-2"}),
    ("CommunicationRequest?occurrence=2024-05-02", {"req-1"}),
    ("CommunicationRequest?occurrence=2024-06", {"req-2"}),  # eq: the period lies in June
    ("CommunicationRequest?occurrence=2024-06-15", set()),  # a day does not contain it
    ("CommunicationRequest?occurrence=ge2024-06", {"req-2"}),
    ("CommunicationRequest?authored=2024-05-01", {"req-1", "req-2"}),
    ("CommunicationRequest?replaces=CommunicationRequest/req-1", {"req-2"}),
    ("CommunicationRequest?requester=Practitioner/pr-1", {"req-1", "req-2"}),
    ("CommunicationRequest?identifier=urn:example:requests|req-2", {"req-2"}),
    ("CommunicationRequest?category=reminder", {"req-1", "req-2"}),
    ("CommunicationRequest?subject:Patient.family=nguyen", {"req-2"}),
    ("Communication?status=completed", {"msg-1"}),
    ("Communication?based-on=CommunicationRequest/req-2", {"msg-2"}),
    ("Communication?sent=2024-05-02", {"msg-1"}),
    ("Communication?sent:missing=true", {"msg-2"}),
    ("Communication?received=2024-06-03", {"msg-2"}),
    ("Communication?sender=Organization/clinic", {"msg-1", "msg-2"}),
    ("Communication?medium=http://terminology.hl7.org/CodeSystem/v3-ParticipationMode|PHONE",
     {"msg-2"}),
    ("Communication?based-on:CommunicationRequest.priority=routine", {"msg-1"}),
    ("Patient?_has:Communication:subject:status=not-done", {"p-2"}),
]


def test_search_table(client: TestClient) -> None:
    _dataset(client)
    failures = []
    for query, expected in CASES:
        response = client.get(f"/fhir/{query}")
        found = {e["resource"]["id"] for e in response.json().get("entry", [])
                 if e["search"]["mode"] == "match"} if response.status_code == 200 else None
        if found != expected:
            failures.append(f"{query}: expected {sorted(expected)}, got {response.status_code} "
                            f"{sorted(found) if found is not None else response.text[:200]}")
    assert not failures, "\n".join(failures)


def test_prm_columns_hold_channel_priority_and_request(client: TestClient,
                                                      engine: Engine) -> None:
    _dataset(client)
    with engine.connect() as connection:
        requests = {row["id"]: row for row in connection.execute(
            select(notification_requests)).mappings()}
        messages = {row["id"]: row for row in connection.execute(
            select(outbound_notifications)).mappings()}
    assert (requests["req-1"]["channel"], requests["req-1"]["prm_priority"]) == ("sms", "normal")
    assert (requests["req-2"]["channel"], requests["req-2"]["prm_priority"]) == ("email", "high")
    assert requests["req-2"]["patient_id"] == "p-2" and requests["req-2"]["recipient_count"] == 1
    assert messages["msg-2"]["channel"] == "voice"
    assert messages["msg-2"]["request_id"] == "req-2"


def test_merge_moves_message_references(client: TestClient) -> None:
    _dataset(client)
    response = client.post("/fhir/Patient/$merge", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "source-patient", "valueReference": {"reference": "Patient/p-2"}},
            {"name": "target-patient", "valueReference": {"reference": "Patient/p-1"}}]})
    assert response.status_code == 200, response.text
    message = client.get("/fhir/Communication/msg-2").json()
    assert message["subject"] == {"reference": "Patient/p-1"}
    assert message["recipient"] == [{"reference": "Patient/p-1"}]
    request = client.get("/fhir/CommunicationRequest/req-2").json()
    assert request["subject"] == {"reference": "Patient/p-1"}
    refused = client.post("/fhir/Communication", headers=FHIR_JSON,
                          json=communication(subject={"reference": "Patient/p-2"}))
    assert refused.status_code == 422


def test_bad_status_is_400(client: TestClient) -> None:
    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON,
                           json=communication_request(status="sent-yesterday"))
    assert response.status_code == 400
