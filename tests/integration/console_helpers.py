"""Shared builders for the console tests: patients written over the FHIR API with fixed ids,
and the CSRF token a console page hands its forms."""

from __future__ import annotations

import base64
import re
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import FHIR_JSON, PDF_BYTES

SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
SSN = "123-45-6789"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def put(client: TestClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource,
                          headers=FHIR_JSON)
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def person(resource_id: str, *, given: str = "Ana", family: str = "Rivera",
           birth_date: str = "1984-03-09", ssn: str | None = SSN,
           **extra: Any) -> dict[str, Any]:
    identifiers = [{"system": SSN_SYSTEM, "value": ssn}] if ssn else []
    return {"resourceType": "Patient", "id": resource_id, "active": True,
            "identifier": identifiers + [{"system": "http://hospital.example.org/ids",
                                          "value": f"H-{resource_id}"}],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "telecom": [{"system": "phone", "value": "(617) 495-2000"},
                        {"system": "email", "value": "ana.rivera@example.org"}],
            "gender": "female", "birthDate": birth_date,
            "address": [{"line": ["12 Elm St"], "city": "Boston", "state": "MA",
                         "postalCode": "02115"}], **extra}


def duplicate_pair(client: TestClient) -> tuple[str, str]:
    """Two records of one woman (the second with a nickname-free typo and no SSN), the second
    holding a document, a message sent and a message scheduled."""
    put(client, person("pa"))
    put(client, person("pb", given="Anna", ssn=None))
    put(client, {"resourceType": "DocumentReference", "id": "doc-b", "status": "current",
                 "subject": {"reference": "Patient/pb"}, "description": "Blood panel",
                 "date": "2024-05-01T10:00:00Z",
                 "content": [{"attachment": {"contentType": "application/pdf",
                                             "title": "blood-panel.pdf",
                                             "data": base64.b64encode(PDF_BYTES).decode()}}]})
    put(client, {"resourceType": "Communication", "id": "msg-b", "status": "completed",
                 "subject": {"reference": "Patient/pb"},
                 "recipient": [{"reference": "Patient/pb"}], "sent": "2024-05-02T09:00:05Z",
                 "medium": [{"coding": [{"system": "urn:prm:message-channel", "code": "sms"}]}],
                 "payload": [{"contentString": "Your results are ready"}]})
    put(client, {"resourceType": "CommunicationRequest", "id": "req-b", "status": "on-hold",
                 "subject": {"reference": "Patient/pb"},
                 "recipient": [{"reference": "Patient/pb"}],
                 "occurrenceDateTime": "2099-01-02T09:00:00Z",
                 "medium": [{"coding": [{"system": "urn:prm:message-channel", "code": "sms"}]}],
                 "payload": [{"contentString": "See you tomorrow at 10:00"}]})
    return "pa", "pb"


def csrf(client: TestClient) -> str:
    """The token of this client's CSRF cookie (a console page mints both)."""
    page = client.get("/console/duplicates")  # its 'scan now' form carries the token
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found is not None
    return found.group(1)


def post_form(client: TestClient, path: str, **fields: str) -> Any:
    return client.post(path, data={"csrf": csrf(client), **fields}, follow_redirects=False)
