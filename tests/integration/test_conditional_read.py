"""Conditional read (http.html#cread, RFC 9110 13.1.2-13.1.3): If-None-Match with the current
version's ETag, or If-Modified-Since at or after its Last-Modified, answers 304 without a body;
anything else, the resource. Declared ``full-support`` in the CapabilityStatement for every type
read through these routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    FHIR_JSON,
    PDF_BYTES,
    communication,
    communication_request,
    coverage,
    document_reference,
    patient,
)

OLD_DATE = "Mon, 01 Jan 2001 00:00:00 GMT"


def _created(client: TestClient, resource: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return f"/fhir/{resource['resourceType']}/{response.json()['id']}"


def _binary(client: TestClient) -> str:
    response = client.post("/fhir/Binary", content=PDF_BYTES,
                           headers={"Content-Type": "application/pdf"})
    assert response.status_code == 201, response.text
    return f"/fhir/Binary/{response.json()['id']}"


MAKERS: dict[str, Callable[[TestClient], str]] = {
    "Patient": lambda client: _created(client, patient()),
    "DocumentReference": lambda client: _created(client, document_reference()),
    "Communication": lambda client: _created(client, communication()),
    "CommunicationRequest": lambda client: _created(client, communication_request()),
    "Coverage": lambda client: _created(client, coverage()),
    "Binary": _binary,
}


@pytest.fixture
def with_patient(client: TestClient) -> TestClient:
    assert client.put("/fhir/Patient/p-1", json=patient(id="p-1"),
                      headers=FHIR_JSON).status_code in (200, 201)
    return client


def _not_modified(response: Any, etag: str) -> bool:
    return (response.status_code == 304 and response.content == b""
            and response.headers["etag"] == etag and "last-modified" in response.headers)


@pytest.mark.parametrize("resource_type", list(MAKERS))
def test_the_current_versions_validators_answer_304(with_patient: TestClient,
                                                    resource_type: str) -> None:
    client = with_patient
    url = MAKERS[resource_type](client)
    first = client.get(url, headers=FHIR_JSON)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for validators in ({"If-None-Match": etag}, {"If-None-Match": f'"x", {etag}'},
                       {"If-None-Match": "*"}, {"If-Modified-Since": modified}):
        assert _not_modified(client.get(url, headers=validators | FHIR_JSON), etag), validators
    for validators in ({"If-None-Match": 'W/"99"'}, {"If-Modified-Since": OLD_DATE},
                       {"If-Modified-Since": "yesterday"}, {"If-None-Match": "W/1"},
                       {"If-None-Match": 'W/"99"', "If-Modified-Since": modified}):
        response = client.get(url, headers=validators | FHIR_JSON)
        assert response.status_code == 200, validators
        assert response.json()["id"] == url.rsplit("/", 1)[1]
    assert _not_modified(client.get(f"{url}/_history/1", headers={"If-None-Match": etag}), etag)


def test_a_changed_resource_answers_in_full_to_the_old_validators(
        with_patient: TestClient) -> None:
    client = with_patient
    url = MAKERS["Patient"](client)
    first = client.get(url)
    changed = client.get(url).json() | {"gender": "other"}
    assert client.put(url, json=changed, headers=FHIR_JSON).status_code == 200
    again = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 200 and again.headers["etag"] == 'W/"2"'
    assert again.json()["gender"] == "other"


def test_binary_bytes_are_not_sent_again_to_a_client_that_holds_them(
        with_patient: TestClient) -> None:
    client = with_patient
    url = _binary(client)
    first = client.get(url)
    assert first.content == PDF_BYTES
    cached = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert _not_modified(cached, first.headers["etag"])
    ranged = client.get(url, headers={"If-None-Match": 'W/"9"', "Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == PDF_BYTES[:4]


def test_the_capability_statement_declares_conditional_read(client: TestClient) -> None:
    resources = {resource["type"]: resource for resource in
                 client.get("/fhir/metadata").json()["rest"][0]["resource"]}
    for resource_type in (*MAKERS, "Provenance", "AuditEvent", "ValueSet", "CodeSystem",
                          "ConceptMap"):
        assert resources[resource_type]["conditionalRead"] == "full-support", resource_type


@pytest.mark.parametrize("url", ["/fhir/ValueSet/languages", "/fhir/CodeSystem/cdcrec",
                                 "/fhir/ConceptMap/prm-message-channel"])
def test_bundled_terminology_is_read_conditionally(client: TestClient, url: str) -> None:
    """The bundled resources carry no versionId: their ETag comes from their content, their
    Last-Modified (when they say) from meta.lastUpdated or their date."""
    first = client.get(url)
    etag = first.headers["etag"]
    assert first.status_code == 200 and etag.startswith('W/"') and len(etag) == 20
    assert client.get(url).headers["etag"] == etag

    def unchanged(response: Any) -> bool:
        return (response.status_code == 304 and response.content == b""
                and response.headers["etag"] == etag
                and response.headers.get("last-modified") == first.headers.get("last-modified"))

    for matching in (etag, etag[2:], "*", f'W/"0000000000000000", {etag}'):
        assert unchanged(client.get(url, headers={"If-None-Match": matching})), matching
    other = client.get(url, headers={"If-None-Match": 'W/"0000000000000000"'})
    assert other.status_code == 200 and other.json() == first.json()
    assert client.get(url, headers={"If-Modified-Since": OLD_DATE}).status_code == 200
    if "last-modified" in first.headers:
        assert unchanged(client.get(url, headers={
            "If-Modified-Since": first.headers["last-modified"]}))


def test_some_bundled_terminology_says_when_it_changed(client: TestClient) -> None:
    response = client.get("/fhir/ValueSet/languages")
    assert response.headers["last-modified"].endswith(" GMT")
