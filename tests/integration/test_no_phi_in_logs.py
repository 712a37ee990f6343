"""No PHI in logs (issue 9, point 4), on SQLite and PostgreSQL: a realistic mix of traffic
(creates in JSON and XML, updates, conditional creates, searches by name, phone, email,
identifier and SSN, reads, history, $match, a send order through the dispatcher, refused and
failing requests) runs with every logger at DEBUG (as ``FHIR_LOG_LEVEL=debug`` sets them) and
the access log captured; none of the test patients' names, SSNs, phones or emails may appear
in any line, in any of the forms they were written in."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_server.http.request_log import ACCESS_LOGGER
from fhir_server.interactions import read as read_interaction
from tests.factories import FHIR_JSON
from tests.integration.messaging_helpers import run_dispatcher

CLIENT_SIDE = ("httpx", "httpcore")
"""The test client's own loggers (its request lines hold the URLs the test sends)."""
PEOPLE = [
    {"id": "phi-1", "given": "Zebulon", "family": "Quixworth", "ssn": "512-47-9983",
     "phone": "(617) 555-0147", "e164": "+16175550147", "email": "zebulon.quixworth@example.org",
     "birth": "1979-04-23"},
    {"id": "phi-2", "given": "Ottoline", "family": "Brackenbury", "ssn": "623-58-1094",
     "phone": "+44 20 7946 0321", "e164": "+442079460321",
     "email": "ottoline.brackenbury@example.net", "birth": "1990-11-02"},
]


def _secrets() -> list[str]:
    """Every form a test patient's PHI was written in (matched case-insensitively)."""
    found = []
    for person in PEOPLE:
        found += [person["given"], person["family"], person["ssn"],
                  person["ssn"].replace("-", ""), person["phone"], person["e164"],
                  re.sub(r"\D", "", person["phone"]), person["email"],
                  person["email"].split("@")[0]]
    return found


def _patient(person: dict[str, str], **overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient", "id": person["id"],
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": person["ssn"]}],
        "name": [{"use": "official", "family": person["family"], "given": [person["given"]]}],
        "telecom": [{"system": "phone", "value": person["phone"], "use": "mobile"},
                    {"system": "email", "value": person["email"]}],
        "gender": "other", "birthDate": person["birth"]}
    resource.update(overrides)
    return {key: value for key, value in resource.items() if value is not None}


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(CLIENT_SIDE):
            return
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


@pytest.fixture
def captured() -> Iterator[Captured]:
    """Every record of every logger at DEBUG, the access log included (it may not propagate)."""
    handler = Captured()
    root, access = logging.getLogger(), logging.getLogger(ACCESS_LOGGER)
    saved = root.level, access.level
    root.setLevel(logging.DEBUG)
    access.setLevel(logging.DEBUG)
    root.addHandler(handler)
    if not access.propagate:
        access.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        access.removeHandler(handler)
        root.setLevel(saved[0])
        access.setLevel(saved[1])


def _traffic(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = PEOPLE
    xml = (f'<Patient xmlns="http://hl7.org/fhir"><id value="{second["id"]}"/>'
           f'<identifier><system value="http://hl7.org/fhir/sid/us-ssn"/>'
           f'<value value="{second["ssn"]}"/></identifier><name><family value='
           f'"{second["family"]}"/><given value="{second["given"]}"/></name><telecom><system '
           f'value="phone"/><value value="{second["phone"]}"/></telecom><telecom><system '
           f'value="email"/><value value="{second["email"]}"/></telecom></Patient>')
    statuses = [
        client.put(f"/fhir/Patient/{first['id']}", json=_patient(first), headers=FHIR_JSON),
        client.put(f"/fhir/Patient/{second['id']}", content=xml.encode(), headers={
            "Content-Type": "application/fhir+xml"}),
        client.post("/fhir/Patient", json=_patient(first, id=None), headers={
            **FHIR_JSON, "If-None-Exist": f"identifier=http://hl7.org/fhir/sid/us-ssn|"
                                          f"{first['ssn']}"}),
        client.put(f"/fhir/Patient/{first['id']}", json=_patient(first, gender="female"),
                   headers={**FHIR_JSON, "If-Match": 'W/"1"'}),
        client.get(f"/fhir/Patient?family={first['family']}&given={first['given']}"),
        client.get(f"/fhir/Patient?name={second['family']}&_include=Patient:link"),
        client.get(f"/fhir/Patient?phone={first['e164']}"),
        client.get(f"/fhir/Patient?email={second['email']}"),
        client.get(f"/fhir/Patient?identifier=http://hl7.org/fhir/sid/us-ssn|{first['ssn']}"),
        client.post("/fhir/Patient/_search", content=f"telecom={second['phone']}".encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"}),
        client.get(f"/fhir/Patient/{first['id']}"),
        client.get(f"/fhir/Patient/{first['id']}/_history/1"),
        client.get(f"/fhir/Patient/{first['id']}/_history"),
        client.get(f"/fhir/Patient/{second['id']}", headers={"Accept": "application/fhir+xml"}),
        client.post("/fhir/Patient/$match", headers=FHIR_JSON, json={
            "resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {
                "resourceType": "Patient", "name": [{"family": first["family"],
                                                     "given": [first["given"]]}],
                "birthDate": first["birth"]}}]}),
        client.get(f"/fhir/Patient/{first['id']}/$match"),
        client.post("/fhir/CommunicationRequest", headers=FHIR_JSON, json={
            "resourceType": "CommunicationRequest", "status": "active",
            "medium": [{"coding": [{"system": "urn:prm:message-channel", "code": "sms"}]}],
            "recipient": [{"reference": f"Patient/{first['id']}"},
                          {"reference": f"Patient/{second['id']}"}],
            "payload": [{"contentString": f"Dear {first['given']} {first['family']}, your "
                                          "results are ready"}]}),
    ]
    assert [response.status_code for response in statuses] == [
        201, 201, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201]
    run_dispatcher(client)
    refused = [
        # invalid values echo nothing of the person into the logs
        client.post("/fhir/Patient", headers=FHIR_JSON, json=_patient(
            first, id=None, telecom=[{"system": "email", "value": f"{first['given']}@@bad"}])),
        client.post("/fhir/Patient", headers=FHIR_JSON, json=_patient(
            first, id=None, identifier=[{"system": "http://hl7.org/fhir/sid/us-ssn",
                                         "value": first["ssn"] + "9"}])),
        client.post("/fhir/Patient", content=f'{{"name": "{second["family"]}'.encode(),
                    headers=FHIR_JSON),
        client.put(f"/fhir/Patient/{first['id']}", json=_patient(first),
                   headers={**FHIR_JSON, "If-Match": 'W/"1"'}),
        client.get(f"/fhir/Patient?family:fuzzy={first['family']}",
                   headers={"Prefer": "handling=strict"}),
        client.get(f"/fhir/Patient/{first['family']}'"),
        client.post("/fhir/Patient", json=_patient(first, id=None), headers={
            **FHIR_JSON, "If-None-Exist": f"family={first['family']}&unknown={second['ssn']}"}),
    ]
    assert all(400 <= response.status_code < 500 for response in refused), [
        (response.status_code, response.text[:100]) for response in refused]

    async def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the database went away")  # an unexpected error: logged with its trace

    monkeypatch.setattr(read_interaction, "read", failing)
    failed = client.get(f"/fhir/Patient/{first['id']}")
    assert failed.status_code == 500


def test_no_phi_reaches_any_log(client: TestClient, captured: Captured,
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    client_without_raising = TestClient(client.app, raise_server_exceptions=False)
    client_without_raising.portal = client.portal  # the running app's loop (the dispatcher)
    _traffic(client_without_raising, monkeypatch)
    output = capsys.readouterr()
    logged = "\n".join([*captured.lines, output.out, output.err])
    assert any("route" in line for line in captured.lines)  # the access log was captured
    assert any("unexpected error" in line for line in captured.lines)
    leaks = [(secret, line[:300]) for secret in _secrets()
             for line in logged.splitlines() if secret.lower() in line.lower()]
    assert leaks == []
