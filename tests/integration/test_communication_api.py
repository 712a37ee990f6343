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

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
TYPES = "urn:example:identifier-types"
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
        identifier=[{"system": "urn:example:requests", "value": "req-2",
                     "type": {"coding": [{"system": V2_0203, "code": "PLAC"},
                                         {"system": TYPES, "code": "request-id"}]}}],
        groupIdentifier={"system": "urn:example:groups", "value": "g-1",
                         "type": {"coding": [{"system": TYPES, "code": "batch"}]}},
        medium=[{"coding": [{"system": "urn:prm:message-channel", "code": "email",
                             "display": "E-mail"}]}],
        subject={"reference": "Patient/p-2"}, recipient=[{"reference": "Patient/p-2"}],
        occurrenceDateTime=None, occurrencePeriod={"start": "2024-06-01", "end": "2024-06-30"},
        replaces=[{"reference": "CommunicationRequest/req-1"}]))
    _put(client, communication(id="msg-1"))
    _put(client, communication(
        id="msg-2", status="not-done", basedOn=[{"reference": "CommunicationRequest/req-2"}],
        identifier=[{"system": "urn:example:messages", "value": "msg-2",
                     "type": {"coding": [{"system": TYPES, "code": "message-id"}]}}],
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
    # identifier :of-type: any coding of the identifier's type
    (f"CommunicationRequest?identifier:of-type={TYPES}|request-id|req-2", {"req-2"}),
    (f"CommunicationRequest?identifier:of-type={V2_0203}|PLAC|req-2", {"req-2"}),
    (f"CommunicationRequest?identifier:of-type={TYPES}|request-id|req-1", set()),
    (f"CommunicationRequest?group-identifier:of-type={TYPES}|batch|g-1", {"req-2"}),
    (f"CommunicationRequest?group-identifier:of-type={TYPES}|request-id|g-1", set()),
    ("CommunicationRequest?group-identifier=urn:example:groups|g-1", {"req-2"}),
    ("CommunicationRequest?group-identifier:missing=true", {"req-1"}),
    (f"Communication?identifier:of-type={TYPES}|message-id|msg-2", {"msg-2"}),
    (f"Communication?identifier:of-type={TYPES}|message-id|msg-1", set()),
    ("Communication?identifier:missing=false", {"msg-1", "msg-2"}),
    # token :not, :text, :missing
    ("CommunicationRequest?medium:text=e-mail", {"req-2"}),
    ("CommunicationRequest?medium:not=urn:prm:message-channel|sms", {"req-2"}),
    ("Communication?medium:not=urn:prm:message-channel|sms", {"msg-2"}),
    ("Communication?category:missing=true", {"msg-1", "msg-2"}),
    ("CommunicationRequest?status:not=active", {"req-2"}),
    # reference :[type], :missing
    ("CommunicationRequest?replaces:missing=true", {"req-1"}),
    ("CommunicationRequest?requester:Practitioner=pr-1", {"req-1", "req-2"}),
    ("CommunicationRequest?requester:Organization=pr-1", set()),
    ("Communication?based-on:CommunicationRequest=req-1", {"msg-1"}),
    ("Communication?encounter:missing=false", set()),
    # dates: req-1 occurs at 2024-05-02T09:00Z, req-2 over June 2024 (a Period); both authored
    # 2024-05-01T12:00Z; msg-1 sent 2024-05-02T09:00:05Z, msg-2 received 08:00Z on 2024-06-03
    ("CommunicationRequest?occurrence=2024", {"req-1", "req-2"}),
    ("CommunicationRequest?occurrence=2024-05-02T09:00:00Z", {"req-1"}),
    ("CommunicationRequest?occurrence=ne2024-05-02", {"req-2"}),
    ("CommunicationRequest?occurrence=gt2024-06-15", {"req-2"}),
    ("CommunicationRequest?occurrence=lt2024-06-15", {"req-1", "req-2"}),
    ("CommunicationRequest?occurrence=le2024-05-02T09:00:00Z", {"req-1"}),
    ("CommunicationRequest?occurrence=lt2024-05-02T09:00:00Z", set()),
    ("CommunicationRequest?occurrence=sa2024-05-31", {"req-2"}),
    ("CommunicationRequest?occurrence=eb2024-06-02", {"req-1"}),
    ("CommunicationRequest?occurrence=ap2024-05-02", {"req-1", "req-2"}),
    ("CommunicationRequest?occurrence:missing=false", {"req-1", "req-2"}),
    ("CommunicationRequest?authored=gt2024-05-01T12:00:00Z", set()),
    ("CommunicationRequest?authored=ge2024-05-01T12:00:00Z", {"req-1", "req-2"}),
    ("CommunicationRequest?authored=lt2024-05-01T12:00:01Z", {"req-1", "req-2"}),
    ("CommunicationRequest?authored=sa2024-04", {"req-1", "req-2"}),
    ("CommunicationRequest?authored=eb2024-05", set()),
    ("Communication?sent=2024-05-02T09:00Z", {"msg-1"}),  # a minute contains the second
    ("Communication?sent=2024-05-02T09:00:05Z", {"msg-1"}),
    ("Communication?sent=ge2024-05-02T09:00:06Z", set()),
    ("Communication?sent=le2024-05-02T09:00:05Z", {"msg-1"}),
    ("Communication?sent=ne2024-05", set()),  # msg-2 has no sent date
    ("Communication?received=2024-06-03T10:00:00%2B02:00", {"msg-2"}),
    ("Communication?received=2024-06-03T08:00:00Z", {"msg-2"}),
    ("Communication?received=2024-06-03T09:00:00Z", set()),
    ("Communication?received=sa2024-06-02", {"msg-2"}),
    ("Communication?received=eb2024-06-03", set()),
    ("Communication?received:missing=true", {"msg-1"}),
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
