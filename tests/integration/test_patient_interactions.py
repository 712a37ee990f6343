"""Patient interactions as https://hl7.org/fhir/R4/http.html says: status, headers, bodies."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.factories import FHIR_JSON, issue_codes, patient, without_server_elements


def _create(client: TestClient, resource: dict | None = None) -> dict:
    response = client.post("/fhir/Patient", json=resource or patient(), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_201_with_location_etag_and_last_modified(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
    assert response.status_code == 201
    body = response.json()
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"] == (
        f"http://testserver/fhir/Patient/{body['id']}/_history/1")
    assert response.headers["last-modified"].endswith("GMT")
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert body["meta"]["versionId"] == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["meta"]["lastUpdated"])


def test_create_ignores_client_id_and_assigns_its_own(client: TestClient) -> None:
    body = _create(client, patient(id="client-chosen"))
    assert body["id"] != "client-chosen"


def test_create_generates_mrn_identifier_when_none_sent(client: TestClient) -> None:
    body = _create(client)
    mrns = [i for i in body["identifier"] if i.get("system") == "urn:prm:mrn"]
    assert len(mrns) == 1
    assert re.fullmatch(r"MRN-\d{4}\d{6}", mrns[0]["value"])
    assert mrns[0]["type"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}


def test_create_keeps_client_mrn(client: TestClient) -> None:
    sent = patient(identifier=[{"system": "urn:prm:mrn", "value": "MRN-2020123456"}])
    body = _create(client, sent)
    assert body["identifier"] == sent["identifier"]


def test_create_with_taken_mrn_is_409(client: TestClient) -> None:
    sent = patient(identifier=[{"system": "urn:prm:mrn", "value": "MRN-2020123456"}])
    _create(client, sent)
    response = client.post("/fhir/Patient", json=sent, headers=FHIR_JSON)
    assert response.status_code == 409
    assert issue_codes(response.json()) == ["conflict"]


def test_prefer_return_minimal_has_no_body(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json=patient(),
                           headers=FHIR_JSON | {"Prefer": "return=minimal"})
    assert response.status_code == 201
    assert response.content == b""
    assert response.headers["location"]


def test_prefer_return_operation_outcome(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json=patient(),
                           headers=FHIR_JSON | {"Prefer": "return=OperationOutcome"})
    assert response.status_code == 201
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["severity"] == "information"


def test_read_returns_what_was_written(client: TestClient) -> None:
    created = _create(client)
    response = client.get(f"/fhir/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert without_server_elements(response.json()) == patient()
    assert response.headers["etag"] == 'W/"1"'


def test_read_unknown_is_404(client: TestClient) -> None:
    response = client.get("/fhir/Patient/does-not-exist")
    assert response.status_code == 404
    assert issue_codes(response.json()) == ["not-found"]


def test_update_increments_version(client: TestClient) -> None:
    created = _create(client)
    changed = created | {"gender": "other"}
    response = client.put(f"/fhir/Patient/{created['id']}", json=changed, headers=FHIR_JSON)
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"2"'
    assert response.json()["meta"]["versionId"] == "2"
    assert client.get(f"/fhir/Patient/{created['id']}").json()["gender"] == "other"


def test_update_keeps_generated_mrn_when_body_omits_it(client: TestClient) -> None:
    created = _create(client)
    mrn = [i for i in created["identifier"] if i["system"] == "urn:prm:mrn"]
    body = patient(id=created["id"])
    updated = client.put(f"/fhir/Patient/{created['id']}", json=body, headers=FHIR_JSON).json()
    assert [i for i in updated["identifier"] if i["system"] == "urn:prm:mrn"] == mrn


def test_update_with_matching_if_match_succeeds(client: TestClient) -> None:
    created = _create(client)
    response = client.put(f"/fhir/Patient/{created['id']}", json=created,
                          headers=FHIR_JSON | {"If-Match": 'W/"1"'})
    assert response.status_code == 200


def test_update_with_stale_if_match_is_412(client: TestClient) -> None:
    created = _create(client)
    client.put(f"/fhir/Patient/{created['id']}", json=created, headers=FHIR_JSON)
    response = client.put(f"/fhir/Patient/{created['id']}", json=created,
                          headers=FHIR_JSON | {"If-Match": 'W/"1"'})
    assert response.status_code == 412
    assert issue_codes(response.json()) == ["conflict"]


def test_update_unknown_id_creates_it(client: TestClient) -> None:
    response = client.put("/fhir/Patient/ehr-42", json=patient(id="ehr-42"), headers=FHIR_JSON)
    assert response.status_code == 201
    assert response.headers["location"].endswith("/Patient/ehr-42/_history/1")
    assert client.get("/fhir/Patient/ehr-42").status_code == 200


def test_update_without_body_id_is_400(client: TestClient) -> None:
    response = client.put("/fhir/Patient/abc", json=patient(), headers=FHIR_JSON)
    assert response.status_code == 400
    assert "Patient.id" in response.json()["issue"][0]["expression"]


def test_update_with_mismatched_id_is_400(client: TestClient) -> None:
    response = client.put("/fhir/Patient/abc", json=patient(id="xyz"), headers=FHIR_JSON)
    assert response.status_code == 400
    assert "does not match" in response.json()["issue"][0]["diagnostics"]


def test_delete_is_204_then_read_is_410(client: TestClient) -> None:
    created = _create(client)
    assert client.delete(f"/fhir/Patient/{created['id']}").status_code == 204
    response = client.get(f"/fhir/Patient/{created['id']}")
    assert response.status_code == 410
    assert issue_codes(response.json()) == ["deleted"]


def test_delete_twice_is_204(client: TestClient) -> None:
    created = _create(client)
    client.delete(f"/fhir/Patient/{created['id']}")
    assert client.delete(f"/fhir/Patient/{created['id']}").status_code == 204


def test_delete_unknown_is_404(client: TestClient) -> None:
    assert client.delete("/fhir/Patient/nobody").status_code == 404


def test_vread_of_old_version_after_delete(client: TestClient) -> None:
    created = _create(client)
    client.delete(f"/fhir/Patient/{created['id']}")
    response = client.get(f"/fhir/Patient/{created['id']}/_history/1")
    assert response.status_code == 200
    assert response.json() == created
    assert client.get(f"/fhir/Patient/{created['id']}/_history/2").status_code == 410
    assert client.get(f"/fhir/Patient/{created['id']}/_history/9").status_code == 404


def test_update_after_delete_recreates(client: TestClient) -> None:
    created = _create(client)
    client.delete(f"/fhir/Patient/{created['id']}")
    response = client.put(f"/fhir/Patient/{created['id']}", json=created, headers=FHIR_JSON)
    assert response.status_code == 201
    assert response.json()["meta"]["versionId"] == "3"


def test_instance_history_newest_first(client: TestClient) -> None:
    created = _create(client)
    client.put(f"/fhir/Patient/{created['id']}", json=created | {"gender": "male"},
               headers=FHIR_JSON)
    client.delete(f"/fhir/Patient/{created['id']}")
    bundle = client.get(f"/fhir/Patient/{created['id']}/_history").json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    assert bundle["total"] == 3
    assert [e["response"]["etag"] for e in bundle["entry"]] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert [e["request"]["method"] for e in bundle["entry"]] == ["DELETE", "PUT", "POST"]
    assert "resource" not in bundle["entry"][0]
    assert bundle["entry"][1]["resource"]["gender"] == "male"


def test_type_history_is_paged(client: TestClient) -> None:
    for _ in range(5):
        _create(client)
    first = client.get("/fhir/Patient/_history?_count=2").json()
    assert first["total"] == 5 and len(first["entry"]) == 2
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(next_url.replace("http://testserver", "")).json()
    assert len(second["entry"]) == 2
    ids_first = {e["resource"]["id"] for e in first["entry"]}
    assert not ids_first & {e["resource"]["id"] for e in second["entry"]}


def test_history_of_unknown_patient_is_404(client: TestClient) -> None:
    assert client.get("/fhir/Patient/nobody/_history").status_code == 404


def test_json_patch_applies_and_versions(client: TestClient) -> None:
    created = _create(client)
    response = client.patch(
        f"/fhir/Patient/{created['id']}",
        content=b'[{"op": "replace", "path": "/gender", "value": "male"},'
                b' {"op": "add", "path": "/name/0/given/-", "value": "Maria"}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gender"] == "male"
    assert body["name"][0]["given"] == ["Ana", "Lucia", "Maria"]
    assert body["meta"]["versionId"] == "2"


def test_json_patch_failed_test_is_422(client: TestClient) -> None:
    created = _create(client)
    response = client.patch(
        f"/fhir/Patient/{created['id']}",
        content=b'[{"op": "test", "path": "/gender", "value": "male"}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 422
    assert client.get(f"/fhir/Patient/{created['id']}").json()["meta"]["versionId"] == "1"


def test_json_patch_making_resource_invalid_is_400(client: TestClient) -> None:
    created = _create(client)
    response = client.patch(
        f"/fhir/Patient/{created['id']}",
        content=b'[{"op": "replace", "path": "/birthDate", "value": "yesterday"}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 400
    assert "Patient.birthDate" in response.json()["issue"][0]["expression"]


def test_conditional_create_returns_existing_match(client: TestClient) -> None:
    created = _create(client)
    response = client.post(
        "/fhir/Patient", json=patient(),
        headers=FHIR_JSON | {"If-None-Exist": "identifier=http://hospital.example.org/ids|A-1001"},
    )
    assert response.status_code == 200
    assert response.json()["id"] == created["id"]
    assert client.get("/fhir/Patient/_history").json()["total"] == 1


def test_conditional_create_without_match_creates(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json=patient(),
                           headers=FHIR_JSON | {"If-None-Exist": "identifier=nobody"})
    assert response.status_code == 201


def test_conditional_create_with_several_matches_is_412(client: TestClient) -> None:
    _create(client)
    _create(client)
    response = client.post("/fhir/Patient", json=patient(),
                           headers=FHIR_JSON | {"If-None-Exist": "family=Rivera"})
    assert response.status_code == 412


def test_conditional_create_with_unsupported_parameter_is_400(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json=patient(),
                           headers=FHIR_JSON | {"If-None-Exist": "foo=bar"})
    assert response.status_code == 400
    assert "foo" in response.json()["issue"][0]["diagnostics"]


def test_conditional_create_with_criteria_in_the_url_returns_existing_match(
        client: TestClient) -> None:
    """fhirpy's get_or_create sends the criteria as the URL's query, not If-None-Exist."""
    created = _create(client)
    response = client.post("/fhir/Patient?identifier=http%3A%2F%2Fhospital.example.org%2Fids"
                           "%7CA-1001&_format=json", json=patient(), headers=FHIR_JSON)
    assert response.status_code == 200
    assert response.json()["id"] == created["id"]
    assert client.get("/fhir/Patient/_history").json()["total"] == 1


def test_conditional_create_with_unsupported_url_parameter_is_400(client: TestClient) -> None:
    response = client.post("/fhir/Patient?foo=bar", json=patient(), headers=FHIR_JSON)
    assert response.status_code == 400
    assert client.get("/fhir/Patient/_history").json()["total"] == 0


def test_conditional_create_with_criteria_in_url_and_header_is_400(client: TestClient) -> None:
    response = client.post("/fhir/Patient?identifier=A-1001", json=patient(),
                           headers=FHIR_JSON | {"If-None-Exist": "identifier=A-1001"})
    assert response.status_code == 400
    assert issue_codes(response.json()) == ["invalid"]


def test_health_endpoints(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/health/ready").status_code == 200


def test_update_replaces_repeating_elements_when_their_count_changes(client: TestClient) -> None:
    created = _create(client, patient(name=[{"family": "A"}, {"family": "B"}, {"family": "C"}]))
    fewer = created | {"name": [{"family": "Z"}], "telecom": [{"system": "email",
                                                               "value": "z@example.org"}]}
    client.put(f"/fhir/Patient/{created['id']}", json=fewer, headers=FHIR_JSON)
    read = client.get(f"/fhir/Patient/{created['id']}").json()
    assert read["name"] == [{"family": "Z"}]
    assert read["telecom"] == [{"system": "email", "value": "z@example.org"}]
    more = read | {"name": [{"family": "X"}, {"given": ["Y"]}], "address": []}
    del more["address"]
    client.put(f"/fhir/Patient/{created['id']}", json=more, headers=FHIR_JSON)
    read = client.get(f"/fhir/Patient/{created['id']}").json()
    assert read["name"] == [{"family": "X"}, {"given": ["Y"]}]
    assert "address" not in read
    assert client.get(f"/fhir/Patient/{created['id']}/_history/1").json()["name"] == [
        {"family": "A"}, {"family": "B"}, {"family": "C"}]
