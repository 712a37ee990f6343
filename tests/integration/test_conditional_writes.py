"""Conditional update, patch and delete over REST (``PUT``/``PATCH``/``DELETE [type]?criteria``,
http.html#cond-update and #3.1.0.7.1), and conditional create holding the same lock. The
CapabilityStatement declares ``conditionalUpdate: true`` and ``conditionalDelete: single`` for
the types that serve them; the others answer 405."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.factories import (
    FHIR_JSON,
    communication,
    communication_request,
    coverage,
    document_reference,
    issue_codes,
    patient,
)
from tests.integration.test_search_fuzz import DOCUMENT_QUERIES, QUERIES, _encoded

IDS = "http://hospital.example.org/ids"
BY_IDENTIFIER = f"/fhir/Patient?identifier={IDS}|A-1001"
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def _history_total(client: TestClient, resource_type: str = "Patient") -> int:
    total: int = client.get(f"/fhir/{resource_type}/_history").json()["total"]
    return total


def _put(client: TestClient, resource: dict[str, Any], url: str = BY_IDENTIFIER,
         **headers: str) -> httpx.Response:
    response: httpx.Response = client.put(url, json=resource, headers={**FHIR_JSON, **headers})
    return response


def test_conditional_update_creates_when_nothing_matches(client: TestClient) -> None:
    response = _put(client, patient())
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["meta"]["versionId"] == "1"
    assert response.headers["location"].endswith(f"/Patient/{created['id']}/_history/1")
    found = client.get(BY_IDENTIFIER).json()
    assert [entry["resource"]["id"] for entry in found["entry"]] == [created["id"]]


def test_conditional_update_updates_the_one_match(client: TestClient) -> None:
    first = _put(client, patient()).json()
    response = _put(client, patient(gender="other"))
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["id"] == first["id"] and updated["meta"]["versionId"] == "2"
    assert client.get(f"/fhir/Patient/{first['id']}").json()["gender"] == "other"
    assert _history_total(client) == 2


def test_conditional_update_with_the_match_id_in_the_body_updates_it(client: TestClient) -> None:
    first = _put(client, patient()).json()
    response = _put(client, patient(id=first["id"], gender="male"))
    assert response.status_code == 200, response.text
    assert response.json()["gender"] == "male"


def test_conditional_update_with_another_id_than_the_match_is_400(client: TestClient) -> None:
    _put(client, patient())
    response = _put(client, patient(id="someone-else", gender="male"))
    assert response.status_code == 400, response.text
    assert "someone-else" in response.json()["issue"][0]["diagnostics"]
    assert _history_total(client) == 1
    assert client.get("/fhir/Patient/someone-else").status_code == 404


def test_conditional_update_without_match_creates_under_the_body_id(client: TestClient) -> None:
    response = _put(client, patient(id="chosen-1"))
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "chosen-1"
    assert client.get("/fhir/Patient/chosen-1").status_code == 200


def test_conditional_update_matching_several_is_412_and_writes_nothing(
        client: TestClient) -> None:
    for mrn in ("MRN-1", "MRN-2"):
        created = client.post("/fhir/Patient", json=patient(identifier=[
            {"system": IDS, "value": "A-1001"}, {"system": "urn:prm:mrn", "value": mrn}]),
            headers=FHIR_JSON)
        assert created.status_code == 201, created.text
    response = _put(client, patient(gender="male"))
    assert response.status_code == 412, response.text
    assert "matches 2" in response.json()["issue"][0]["diagnostics"]
    assert _history_total(client) == 2
    assert {entry["resource"]["gender"] for entry in client.get(BY_IDENTIFIER).json()["entry"]} \
        == {"female"}


def test_conditional_update_honours_if_match(client: TestClient) -> None:
    _put(client, patient())
    stale = _put(client, patient(gender="male"), **{"If-Match": 'W/"7"'})
    assert stale.status_code == 412, stale.text
    current = _put(client, patient(gender="male"), **{"If-Match": 'W/"1"'})
    assert current.status_code == 200, current.text
    assert current.json()["meta"]["versionId"] == "2"


@pytest.mark.parametrize("url", ["/fhir/Patient", "/fhir/Patient?_format=json"])
def test_conditional_update_without_criteria_is_400(client: TestClient, url: str) -> None:
    response = _put(client, patient(), url=url)
    assert response.status_code == 400, response.text
    assert "needs search criteria" in response.json()["issue"][0]["diagnostics"]
    assert _history_total(client) == 0


def test_conditional_update_on_an_unsupported_criterion_is_400(client: TestClient) -> None:
    response = _put(client, patient(), url="/fhir/Patient?shoe-size=9")
    assert response.status_code == 400, response.text
    assert "shoe-size" in response.json()["issue"][0]["diagnostics"]
    assert _history_total(client) == 0


def test_conditional_update_refuses_an_invalid_body(client: TestClient) -> None:
    response = _put(client, patient(gender="robot"))
    assert 400 <= response.status_code < 500, response.text
    assert issue_codes(response.json())
    assert _history_total(client) == 0


def test_conditional_delete_deletes_the_one_match(client: TestClient) -> None:
    resource_id = _put(client, patient()).json()["id"]
    response = client.delete(BY_IDENTIFIER)
    assert response.status_code == 204, response.text
    assert client.get(f"/fhir/Patient/{resource_id}").status_code == 410
    assert "entry" not in client.get(BY_IDENTIFIER).json()


def test_conditional_delete_with_no_match_is_204_and_changes_nothing(
        client: TestClient) -> None:
    resource_id = _put(client, patient()).json()["id"]
    response = client.delete(f"/fhir/Patient?identifier={IDS}|nobody")
    assert response.status_code == 204, response.text
    assert client.get(f"/fhir/Patient/{resource_id}").status_code == 200
    assert _history_total(client) == 1


def test_conditional_delete_matching_several_is_412_and_deletes_nothing(
        client: TestClient) -> None:
    ids = [client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()["id"]
           for _ in range(2)]
    response = client.delete("/fhir/Patient?family=Rivera")
    assert response.status_code == 412, response.text
    assert all(client.get(f"/fhir/Patient/{i}").status_code == 200 for i in ids)


def test_conditional_delete_without_criteria_is_400(client: TestClient) -> None:
    resource_id = _put(client, patient()).json()["id"]
    response = client.delete("/fhir/Patient")
    assert response.status_code == 400, response.text
    assert client.get(f"/fhir/Patient/{resource_id}").status_code == 200


def test_conditional_patch_patches_the_one_match(client: TestClient) -> None:
    resource_id = _put(client, patient()).json()["id"]
    response = client.patch(BY_IDENTIFIER, headers=JSON_PATCH, json=[
        {"op": "replace", "path": "/gender", "value": "male"}])
    assert response.status_code == 200, response.text
    assert response.json()["id"] == resource_id and response.json()["gender"] == "male"
    assert response.json()["meta"]["versionId"] == "2"


def test_conditional_patch_without_a_match_is_412(client: TestClient) -> None:
    response = client.patch(BY_IDENTIFIER, headers=JSON_PATCH, json=[
        {"op": "replace", "path": "/gender", "value": "male"}])
    assert response.status_code == 412, response.text
    assert "matches no resource" in response.json()["issue"][0]["diagnostics"]
    assert _history_total(client) == 0


def test_conditional_patch_honours_if_match(client: TestClient) -> None:
    _put(client, patient())
    response = client.patch(BY_IDENTIFIER, headers={**JSON_PATCH, "If-Match": 'W/"3"'}, json=[
        {"op": "replace", "path": "/gender", "value": "male"}])
    assert response.status_code == 412, response.text
    assert _history_total(client) == 1


MAKERS: dict[str, tuple[Callable[..., dict[str, Any]], str]] = {
    "DocumentReference": (document_reference, "identifier=urn:example:documents|doc-1"),
    "Communication": (communication, "identifier=urn:example:messages|msg-1"),
    "CommunicationRequest": (communication_request, "identifier=urn:example:requests|req-1"),
    "Coverage": (coverage, "identifier=urn:prm:insurance-policy|POL-1001"),
}


@pytest.mark.parametrize("resource_type", sorted(MAKERS))
def test_conditional_writes_on_the_other_types(client: TestClient, resource_type: str) -> None:
    make, criteria = MAKERS[resource_type]
    assert client.put("/fhir/Patient/p-1", json=patient(id="p-1"),
                      headers=FHIR_JSON).status_code in (200, 201)
    url = f"/fhir/{resource_type}?{criteria}"
    created = client.put(url, json=make(), headers=FHIR_JSON)
    assert created.status_code == 201, created.text
    resource_id = created.json()["id"]
    updated = client.put(url, json=make(), headers=FHIR_JSON)
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == resource_id and updated.json()["meta"]["versionId"] == "2"
    deleted = client.delete(url)
    assert deleted.status_code == 204, deleted.text
    assert client.get(f"/fhir/{resource_type}/{resource_id}").status_code == 410


@pytest.mark.parametrize(("method", "url"), [
    ("PUT", "/fhir/Binary?_id=x"), ("DELETE", "/fhir/Binary?_id=x"),
    ("DELETE", "/fhir/AuditEvent?action=R"), ("PUT", "/fhir/Provenance?_id=x"),
])
def test_undeclared_conditional_writes_are_405(client: TestClient, method: str,
                                               url: str) -> None:
    response = client.request(method, url, json={"resourceType": url.split("/")[2].split("?")[0]},
                              headers=FHIR_JSON)
    assert response.status_code == 405, response.text
    assert "not supported" in response.json()["issue"][0]["diagnostics"]
    assert response.headers["allow"] == ("GET, HEAD, POST" if "Binary" in url else "GET, HEAD")


def test_the_capability_statement_declares_what_is_served(client: TestClient) -> None:
    resources = {resource["type"]: resource
                 for resource in client.get("/fhir/metadata").json()["rest"][0]["resource"]}
    for resource_type in ("Patient", *MAKERS):
        assert resources[resource_type]["conditionalUpdate"] is True
        assert resources[resource_type]["conditionalDelete"] == "single"
    for resource_type in ("Binary", "AuditEvent", "Provenance"):
        assert not resources[resource_type]["conditionalUpdate"]
        assert resources[resource_type]["conditionalDelete"] == "not-supported"
    paths = client.get("/fhir/openapi.json").json()["paths"]
    assert {"put", "patch", "delete"} <= set(paths["/fhir/Patient"])
    assert "put" not in paths["/fhir/Binary"] and "delete" not in paths["/fhir/AuditEvent"]
    criteria = {parameter["name"] for parameter in paths["/fhir/Patient"]["put"]["parameters"]}
    assert {"identifier", "If-Match"} <= criteria


def _at_once(client: TestClient, send: Callable[[httpx.AsyncClient], Any],
             times: int = 4) -> list[httpx.Response]:
    app = client.app

    async def all_of_them() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return list(await asyncio.gather(*(send(http) for _ in range(times))))

    return client.portal.call(all_of_them)  # type: ignore[union-attr]


def test_conditional_updates_sent_at_once_create_one_resource(client: TestClient) -> None:
    responses = _at_once(client, lambda http: http.put(BY_IDENTIFIER, json=patient(),
                                                       headers=FHIR_JSON))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 200, 200, 201], [response.text for response in responses]
    assert len({response.json()["id"] for response in responses}) == 1
    assert len(client.get(BY_IDENTIFIER).json()["entry"]) == 1


def test_conditional_creates_sent_at_once_create_one_resource(client: TestClient) -> None:
    headers = {**FHIR_JSON, "If-None-Exist": f"identifier={IDS}|A-1001"}
    responses = _at_once(client, lambda http: http.post("/fhir/Patient", json=patient(),
                                                        headers=headers))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 200, 200, 201], [response.text for response in responses]
    assert len(client.get(BY_IDENTIFIER).json()["entry"]) == 1


MATCHING = {
    "Patient": [("identifier", f"{IDS}|A-1001"), ("family", "Rivera"), ("given", "Ana"),
                ("gender", "female"), ("birthdate", "1984-03-09"), ("_id", "p-1"),
                ("email", "ana.rivera@example.org"), ("identifier", f"{IDS}|nobody")],
    "DocumentReference": [("identifier", "urn:example:documents|doc-1"),
                          ("subject", "Patient/p-1"), ("status", "current"),
                          ("patient", "p-1"), ("status", "superseded")],
}
"""Criteria that select the stored resources (or, the last ones, none)."""
CRITERIA = {resource_type: st.one_of(
    fuzz.map(_encoded),
    st.lists(st.sampled_from(MATCHING[resource_type]), min_size=1, max_size=3).map(urlencode))
    for resource_type, fuzz in (("Patient", QUERIES), ("DocumentReference", DOCUMENT_QUERIES))}
PATCHES = {"Patient": [{"op": "replace", "path": "/gender", "value": "female"}],
           "DocumentReference": [{"op": "replace", "path": "/status", "value": "current"}]}


def _live(client: TestClient, resource_type: str) -> int:
    total: int = client.get(f"/fhir/{resource_type}?_summary=count").json()["total"]
    return total


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), method=st.sampled_from(["PUT", "PATCH", "DELETE"]),
       resource_type=st.sampled_from(sorted(CRITERIA)))
def test_random_criteria_never_fail_or_write_on_refusal(
        client: TestClient, data: st.DataObject, method: str, resource_type: str) -> None:
    """Random criteria: never a server error; a refusal writes nothing; a delete removes at
    most one resource and an update or patch changes or adds at most one version."""
    if not _live(client, "Patient"):
        client.put("/fhir/Patient/p-1", json=patient(id="p-1"), headers=FHIR_JSON)
        client.post("/fhir/DocumentReference", json=document_reference(), headers=FHIR_JSON)
    encoded = data.draw(CRITERIA[resource_type])
    before = _history_total(client, resource_type), _live(client, resource_type)
    body: Any = (PATCHES[resource_type] if method == "PATCH" else
                 patient() if resource_type == "Patient" else document_reference())
    headers = JSON_PATCH if method == "PATCH" else FHIR_JSON
    response = client.request(method, f"/fhir/{resource_type}?{encoded}", json=body,
                              headers=headers)
    assert response.status_code < 500, (method, encoded, response.text)
    event(f"{method} {resource_type} {response.status_code}")
    after = _history_total(client, resource_type), _live(client, resource_type)
    if response.status_code >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"
        assert after == before, (method, encoded, response.text)
    else:
        assert after[0] - before[0] in (0, 1), (method, encoded)
        assert abs(after[1] - before[1]) <= 1, (method, encoded)
