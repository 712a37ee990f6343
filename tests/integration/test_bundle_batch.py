"""Batch Bundles (https://hl7.org/fhir/R4/http.html#transaction): each entry succeeds or fails
on its own, in its own transaction; a batch-response in request order. Random Bundles never
produce a server error. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from storage.tables import patients
from tests.factories import FHIR_JSON, communication, patient


def batch(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch", "entry": list(entries)}


def send(client: TestClient, bundle: Any, **headers: str) -> Any:
    return client.post("/fhir", json=bundle, headers=FHIR_JSON | headers)


def statuses(response: Any) -> list[str]:
    return [entry["response"]["status"] for entry in response.json()["entry"]]


def test_entries_succeed_or_fail_independently(client: TestClient, engine: Engine) -> None:
    response = send(client, batch(
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:bad", "resource": patient(gender="robot"),
         "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient/unknown"}},
        {"resource": patient(identifier=[{"system": "urn:x", "value": "2"}]),
         "request": {"method": "POST", "url": "Patient"}}))
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "batch-response"
    assert statuses(response) == ["201 Created", "400 Bad Request", "404 Not Found",
                                  "201 Created"]
    outcome = body["entry"][1]["response"]["outcome"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["diagnostics"].startswith("Bundle.entry[1] (fullUrl urn:uuid:bad)")
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(patients)).scalar_one() == 2


def test_unsupported_types_fail_alone(client: TestClient) -> None:
    response = send(client, batch(
        {"resource": {"resourceType": "Encounter", "status": "finished"},
         "request": {"method": "POST", "url": "Encounter"}},
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}}))
    assert statuses(response) == ["404 Not Found", "201 Created"]
    issue = response.json()["entry"][0]["response"]["outcome"]["issue"][0]
    assert issue["code"] == "not-supported"
    assert "Encounter" in issue["diagnostics"]


def test_a_failed_write_in_a_batch_leaves_the_others(client: TestClient) -> None:
    client.put("/fhir/Patient/p-1", json=patient(id="p-1"), headers=FHIR_JSON)
    response = send(client, batch(
        {"resource": patient(id="p-1", gender="male"),
         "request": {"method": "PUT", "url": "Patient/p-1", "ifMatch": 'W/"5"'}},
        {"resource": communication(basedOn=None, subject={"reference": "Patient/p-1"}),
         "request": {"method": "POST", "url": "Communication"}}))
    assert statuses(response) == ["412 Precondition Failed", "201 Created"]
    assert client.get("/fhir/Patient/p-1").json()["gender"] == "female"


def test_batch_references_are_not_rewritten(client: TestClient) -> None:
    response = send(client, batch(
        {"fullUrl": "urn:uuid:p", "resource": patient(),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": communication(basedOn=None, subject={"reference": "urn:uuid:p"}),
         "request": {"method": "POST", "url": "Communication"}}))
    assert response.json()["entry"][1]["resource"]["subject"]["reference"] == "urn:uuid:p"


def test_official_batch_examples(client: TestClient, shared_data: Path) -> None:
    client.put("/fhir/Patient/example", json=patient(id="example"), headers=FHIR_JSON)
    folder = shared_data / "fhir-r4-examples" / "bundles"
    simple = json.loads((folder / "Bundle-bundle-request-simplesummary.json").read_text())
    response = send(client, simple)
    assert response.status_code == 200
    assert statuses(response) == ["200 OK", "404 Not Found", "404 Not Found", "404 Not Found"]
    assert response.json()["entry"][0]["resource"]["id"] == "example"
    meds = json.loads((folder / "Bundle-bundle-request-medsallergies.json").read_text())
    assert statuses(send(client, meds)) == ["200 OK"] + ["404 Not Found"] * 4


def test_batch_search_entry_returns_a_searchset(client: TestClient) -> None:
    client.put("/fhir/Patient/p-1", json=patient(id="p-1"), headers=FHIR_JSON)
    response = send(client, batch({"request": {"method": "GET", "url": "Patient?family=Rivera"}}))
    searchset = response.json()["entry"][0]["resource"]
    assert searchset["type"] == "searchset"
    assert searchset["total"] == 1


# ----------------------------------------------------------------- property test

METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "TRACE", 7, None])
URLS = st.one_of(
    st.sampled_from(["Patient", "Patient/p-1", "Patient/p-1/_history/1", "Patient?family=x",
                     "Patient?identifier=urn:x|1", "Communication", "Encounter", "Binary/b",
                     "DocumentReference?subject=Patient/p-1", "/Patient/", "Patient/$match",
                     "http://elsewhere/Patient/1", "Patient/../x", "", "?", "Patient?",
                     "Patient/p-1/_history/x", "Patient?_count=0"]),
    st.text(max_size=30))
REFERENCES = st.sampled_from(["urn:uuid:1", "urn:uuid:2", "Patient/p-1", "Patient?identifier=",
                              "Patient?identifier=urn:x|1", "Patient?family=Rivera",
                              "Encounter?x=1", "Patient", "", "http://x/fhir/Patient/1"])
RESOURCES = st.one_of(
    st.builds(lambda ref: patient(link=[{"other": {"reference": ref}, "type": "seealso"}]),
              REFERENCES),
    st.builds(lambda ref: communication(basedOn=None, subject={"reference": ref}), REFERENCES),
    st.sampled_from([patient(id="p-1"), {"resourceType": "Encounter"}, {"resourceType": 5},
                     {}, [], "x", {"resourceType": "Patient", "gender": "robot"},
                     {"resourceType": "Binary", "contentType": "application/json-patch+json",
                      "data": "W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9nZW5kZXIiLCJ2YWx1ZSI6Im1hbGUifV0="},
                      {"resourceType": "Binary", "contentType": "application/json-patch+json",
                       "data": "bm90IGpzb24="}]),
    st.none())
REQUEST_EXTRAS = st.dictionaries(
    st.sampled_from(["ifNoneExist", "ifMatch", "ifNoneMatch", "ifModifiedSince"]),
    st.one_of(st.sampled_from(['W/"1"', "identifier=urn:x|1", "2020-01-01T00:00:00Z", "*",
                               "garbage", "family=", "2020-13-45"]), st.integers()),
    max_size=2)
ENTRIES = st.lists(st.builds(
    lambda method, url, resource, extras, full_url: {
        **({"fullUrl": full_url} if full_url else {}),
        **({"resource": resource} if resource is not None else {}),
        "request": {"method": method, "url": url, **extras}},
    METHODS, URLS, RESOURCES, REQUEST_EXTRAS,
    st.sampled_from([None, "urn:uuid:1", "urn:uuid:2", "http://x/fhir/Patient/1", 3])),
    max_size=6)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["batch", "transaction", "transaction", "collection", 1]),
       entries=ENTRIES)
def test_random_bundles_are_never_a_server_error(client: TestClient, kind: Any,
                                                 entries: list[dict[str, Any]]) -> None:
    client.put("/fhir/Patient/p-1", json=patient(id="p-1"), headers=FHIR_JSON)
    response = send(client, {"resourceType": "Bundle", "type": kind, "entry": entries})
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code == 200:
        assert body["type"] in ("batch-response", "transaction-response")
        assert len(body["entry"]) == len(entries)
        for entry in body["entry"]:
            assert int(entry["response"]["status"][:3]) < 500, entry
    else:
        assert body["resourceType"] == "OperationOutcome"
