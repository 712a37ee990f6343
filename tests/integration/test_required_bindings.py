"""Required bindings on write, SQLite and PostgreSQL: a code outside the value set of a
required binding is refused with 400, an OperationOutcome ``code-invalid`` whose expression is
the element and whose diagnostics name the code and the value set; nothing is stored.
Preferred and example bindings (languages, marital status, categories) are not enforced."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    FHIR_JSON,
    binary,
    communication,
    communication_request,
    document_reference,
    patient,
)

VS = "http://hl7.org/fhir/ValueSet/"
CASES: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("gender", patient(gender="mail"), "Patient.gender", "mail", "administrative-gender"),
    ("name-use", patient(name=[{"use": "legal", "family": "Rivera"}]), "Patient.name[0].use",
     "legal", "name-use"),
    ("telecom-system", patient(telecom=[{"system": "mobile", "value": "+16174952000"}]),
     "Patient.telecom[0].system", "mobile", "contact-point-system"),
    ("telecom-use", patient(telecom=[{"system": "phone", "value": "+16174952000",
                                      "use": "cell"}]),
     "Patient.telecom[0].use", "cell", "contact-point-use"),
    ("address-use", patient(address=[{"use": "primary", "city": "Boston"}]),
     "Patient.address[0].use", "primary", "address-use"),
    ("address-type", patient(address=[{"type": "mailing", "city": "Boston"}]),
     "Patient.address[0].type", "mailing", "address-type"),
    ("identifier-use", patient(identifier=[{"use": "primary", "system": "urn:x", "value": "1"}]),
     "Patient.identifier[0].use", "primary", "identifier-use"),
    ("link-type", patient(link=[{"type": "merged", "other": {"reference": "Patient/x"}}]),
     "Patient.link[0].type", "merged", "link-type"),
    ("contact-gender", patient(contact=[{"gender": "F", "name": {"family": "Rivera"}}]),
     "Patient.contact[0].gender", "F", "administrative-gender"),
    ("photo-mime", patient(photo=[{"contentType": "jpeg", "url": "http://example.org/a.jpg"}]),
     "Patient.photo[0].contentType", "jpeg", "mimetypes"),
    ("document-status", document_reference(status="active"), "DocumentReference.status",
     "active", "document-reference-status"),
    ("document-docstatus", document_reference(docStatus="draft"), "DocumentReference.docStatus",
     "draft", "composition-status"),
    ("relates-to", document_reference(relatesTo=[{"code": "updates", "target": {
        "reference": "DocumentReference/x"}}]),
     "DocumentReference.relatesTo[0].code", "updates", "document-relationship-type"),
    ("attachment-mime", document_reference(content=[{"attachment": {
        "contentType": "pdf", "url": "http://example.org/a.pdf"}}]),
     "DocumentReference.content[0].attachment.contentType", "pdf", "mimetypes"),
    ("binary-mime", binary(contentType="application pdf"), "Binary.contentType",
     "application pdf", "mimetypes"),
    ("communication-status", communication(status="sent"), "Communication.status", "sent",
     "event-status"),
    ("communication-priority", communication(priority="high"), "Communication.priority", "high",
     "request-priority"),
    ("request-status", communication_request(status="scheduled"),
     "CommunicationRequest.status", "scheduled", "request-status"),
    ("request-priority", communication_request(status="draft", priority="normal"),
     "CommunicationRequest.priority", "normal", "request-priority"),
]


@pytest.mark.parametrize(("resource", "path", "code", "value_set"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_code_outside_a_required_value_set_is_400(client: TestClient, resource: dict[str, Any],
                                                  path: str, code: str, value_set: str) -> None:
    resource_type = resource["resourceType"]
    response = client.post(f"/fhir/{resource_type}", json=resource, headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    [issue] = response.json()["issue"]
    assert issue["code"] == "code-invalid"
    assert issue["expression"] == [path]
    assert f"'{code}'" in issue["diagnostics"] and VS + value_set in issue["diagnostics"]
    assert client.get(f"/fhir/{resource_type}/_history").json()["total"] == 0


def test_update_with_a_bad_code_keeps_the_stored_version(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()
    response = client.put(f"/fhir/Patient/{created['id']}", json=created | {"gender": "F"},
                          headers=FHIR_JSON)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Patient.gender"]
    assert client.get(f"/fhir/Patient/{created['id']}").json()["meta"]["versionId"] == "1"


def test_patch_to_a_bad_code_is_400(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()
    response = client.patch(f"/fhir/Patient/{created['id']}",
                            content=b'[{"op": "replace", "path": "/gender", "value": "x"}]',
                            headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "code-invalid"


def test_transaction_entry_with_a_bad_code_fails_the_transaction(client: TestClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": patient(),
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:2", "resource": patient(gender="m"),
         "request": {"method": "POST", "url": "Patient"}}]}
    response = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    assert "administrative-gender" in response.text
    assert client.get("/fhir/Patient/_history").json()["total"] == 0


def test_preferred_and_example_bindings_are_not_enforced(client: TestClient) -> None:
    resource = patient(
        language="tlh",
        communication=[{"language": {"coding": [{"system": "urn:ietf:bcp:47",
                                                 "code": "x-klingon"}]}}],
        maritalStatus={"coding": [{"system": "http://example.org/marital", "code": "x"}]},
        identifier=[{"type": {"coding": [{"system": "http://example.org/types",
                                          "code": "X"}]}, "system": "urn:x", "value": "1"}])
    response = client.post("/fhir/Patient", json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    request = communication_request(status="draft", category=[{"coding": [{
        "system": "http://example.org/categories", "code": "anything"}]}])
    assert client.post("/fhir/CommunicationRequest", json=request,
                       headers=FHIR_JSON).status_code == 201
