"""Transaction Bundles (https://hl7.org/fhir/R4/http.html#transaction): all or nothing in one
database transaction, urn:uuid references rewritten, conditional entries and references
resolved inside it, a transaction-response per entry. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.settings import Settings
from storage.media_tables import binaries, media_assets
from storage.messaging_tables import outbound_notifications
from storage.tables import patients, resource_history
from tests.conftest import empty_tables
from tests.factories import FHIR_JSON, PDF_BYTES, binary, communication, issue_codes, patient

SERVED = {"Patient", "DocumentReference", "Binary", "Communication", "CommunicationRequest"}
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def post(full_url: str, resource: dict[str, Any], **request: str) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"], **request}}


def put(url: str, resource: dict[str, Any], **request: str) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": url, **request}}


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def send(client: TestClient, bundle: dict[str, Any], **headers: str) -> Any:
    return client.post("/fhir", json=bundle, headers=FHIR_JSON | headers)


def seed(client: TestClient, resource_type: str, resource_id: str,
         resource: dict[str, Any]) -> None:
    response = client.put(f"/fhir/{resource_type}/{resource_id}",
                          json=resource | {"id": resource_id}, headers=FHIR_JSON)
    assert response.status_code in (200, 201), response.text


# ------------------------------------------------------------------ references


def test_urn_uuid_references_are_rewritten_in_extensions_and_attachments(
        client: TestClient) -> None:
    document = {
        "resourceType": "DocumentReference", "status": "current",
        "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"},
        "extension": [{"url": "http://example.org/fhir/StructureDefinition/reviewed-for",
                       "valueReference": {
                           "reference": "urn:uuid:11111111-1111-1111-1111-111111111111"}}],
        "content": [{"attachment": {"contentType": "application/pdf",
                                    "url": "urn:uuid:22222222-2222-2222-2222-222222222222"}}]}
    bundle = transaction(
        post("urn:uuid:33333333-3333-3333-3333-333333333333", document),
        post("urn:uuid:11111111-1111-1111-1111-111111111111", patient()),
        post("urn:uuid:22222222-2222-2222-2222-222222222222", binary()))
    response = send(client, bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "transaction-response"
    statuses = [entry["response"]["status"] for entry in body["entry"]]
    assert statuses == ["201 Created"] * 3
    patient_ref = body["entry"][1]["response"]["location"].split("/_history")[0]
    binary_ref = body["entry"][2]["response"]["location"].split("/_history")[0]
    stored = client.get("/fhir/" + body["entry"][0]["response"]["location"].split("/_history")[0],
                        headers=FHIR_JSON).json()
    assert stored["subject"]["reference"] == patient_ref
    assert stored["extension"][0]["valueReference"]["reference"] == patient_ref
    assert stored["content"][0]["attachment"]["url"] == binary_ref
    assert stored["content"][0]["attachment"]["size"] == len(PDF_BYTES)


def test_response_entries_carry_status_location_etag_and_last_modified(
        client: TestClient) -> None:
    response = send(client, transaction(post("urn:uuid:a", patient())))
    entry = response.json()["entry"][0]
    assert entry["response"]["status"] == "201 Created"
    assert entry["response"]["location"].startswith("Patient/")
    assert entry["response"]["location"].endswith("/_history/1")
    assert entry["response"]["etag"] == 'W/"1"'
    assert entry["response"]["lastModified"].endswith("Z")
    assert entry["resource"]["resourceType"] == "Patient"
    assert entry["fullUrl"].startswith("http://testserver/fhir/Patient/")


@pytest.mark.parametrize(("prefer", "has_resource", "has_outcome"), [
    ("return=minimal", False, False),
    ("return=representation", True, False),
    ("return=OperationOutcome", False, True),
])
def test_prefer_return_shapes_each_entry(client: TestClient, prefer: str, has_resource: bool,
                                         has_outcome: bool) -> None:
    entry = send(client, transaction(post("urn:uuid:a", patient())),
                 Prefer=prefer).json()["entry"][0]
    assert ("resource" in entry) is has_resource
    assert ("outcome" in entry["response"]) is has_outcome


def test_conditional_reference_is_resolved_in_the_transaction(client: TestClient) -> None:
    seed(client, "Patient", "p-1", patient())
    bundle = transaction(post("urn:uuid:c", communication(
        basedOn=None, subject={"reference": "Patient?identifier=http://hospital.example.org/ids|A-1001"})))
    response = send(client, bundle)
    assert response.status_code == 200, response.text
    location = response.json()["entry"][0]["response"]["location"].split("/_history")[0]
    stored = client.get(f"/fhir/{location}", headers=FHIR_JSON).json()
    assert stored["subject"]["reference"] == "Patient/p-1"


def test_conditional_reference_to_a_patient_created_in_the_same_bundle(
        client: TestClient) -> None:
    bundle = transaction(
        post("urn:uuid:c", communication(basedOn=None, subject={
            "reference": "Patient?identifier=urn:example:new|N-1"})),
        post("urn:uuid:p", patient(identifier=[{"system": "urn:example:new", "value": "N-1"}])))
    # conditional references are resolved before the writes: the new patient is not there yet
    response = send(client, bundle)
    assert response.status_code == 412
    assert "Bundle.entry[0]" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("how_many", [0, 2])
def test_conditional_reference_matching_none_or_many_is_412_naming_the_entry(
        client: TestClient, engine: Engine, how_many: int) -> None:
    for index in range(how_many):
        seed(client, "Patient", f"twin-{index}", patient())
    bundle = transaction(
        post("urn:uuid:p", patient(identifier=[{"system": "urn:x", "value": "1"}])),
        post("urn:uuid:c", communication(basedOn=None, subject={
            "reference": "Patient?identifier=http://hospital.example.org/ids|A-1001"})))
    response = send(client, bundle)
    assert response.status_code == 412
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert "Bundle.entry[1] (fullUrl urn:uuid:c)" in diagnostics
    assert f"matches {how_many} resources" in diagnostics
    assert count(engine, patients) == how_many


# ------------------------------------------------------------- conditional entries


def test_if_none_exist_returns_the_match_and_writes_nothing(client: TestClient,
                                                             engine: Engine) -> None:
    seed(client, "Patient", "p-1", patient())
    bundle = transaction(post("urn:uuid:p", patient(), ifNoneExist=(
        "identifier=http://hospital.example.org/ids|A-1001")))
    entry = send(client, bundle).json()["entry"][0]
    assert entry["response"]["status"] == "200 OK"
    assert entry["response"]["location"] == "Patient/p-1/_history/1"
    assert count(engine, patients) == 1


def test_conditional_update_creates_then_updates(client: TestClient) -> None:
    url = "Patient?identifier=urn:example:cu|7"
    resource = patient(identifier=[{"system": "urn:example:cu", "value": "7"}])
    first = send(client, transaction(put(url, resource))).json()["entry"][0]["response"]
    assert first["status"] == "201 Created"
    second = send(client, transaction(put(url, resource | {"gender": "male"})))
    response = second.json()["entry"][0]["response"]
    assert response["status"] == "200 OK"
    assert response["etag"] == 'W/"2"'
    assert response["location"].split("/_history")[0] == first["location"].split("/_history")[0]


def test_if_match_that_does_not_match_is_412_naming_the_entry(client: TestClient) -> None:
    seed(client, "Patient", "p-1", patient())
    response = send(client, transaction(
        put("Patient/p-1", patient(id="p-1"), ifMatch='W/"3"') | {"fullUrl": "urn:uuid:u"}))
    assert response.status_code == 412
    assert response.json()["issue"][0]["diagnostics"].startswith(
        "Bundle.entry[0] (fullUrl urn:uuid:u)")


def test_delete_and_conditional_delete(client: TestClient) -> None:
    seed(client, "Patient", "p-1", patient())
    seed(client, "Patient", "p-2", patient(identifier=[{"system": "urn:x", "value": "del"}]))
    response = send(client, transaction(
        {"request": {"method": "DELETE", "url": "Patient/p-1"}},
        {"request": {"method": "DELETE", "url": "Patient?identifier=urn:x|del"}},
        {"request": {"method": "DELETE", "url": "Patient?identifier=urn:x|nobody"}}))
    assert [e["response"]["status"] for e in response.json()["entry"]] == ["204 No Content"] * 3
    assert client.get("/fhir/Patient/p-1").status_code == 410
    assert client.get("/fhir/Patient/p-2").status_code == 410


def test_get_with_if_none_match_is_304_and_gets_run_after_the_writes(
        client: TestClient) -> None:
    seed(client, "Patient", "p-1", patient())
    response = send(client, transaction(
        {"request": {"method": "GET", "url": "Patient/p-1", "ifNoneMatch": 'W/"2"'}},
        {"request": {"method": "GET", "url": "Patient/p-1", "ifNoneMatch": 'W/"1"'}},
        put("Patient/p-1", patient(id="p-1", gender="other"))))
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["304 Not Modified", "200 OK", "200 OK"]
    assert response.json()["entry"][1]["resource"]["gender"] == "other"


def test_if_modified_since_in_the_future_is_304(client: TestClient) -> None:
    seed(client, "Patient", "p-1", patient())
    response = send(client, transaction({"request": {
        "method": "GET", "url": "Patient/p-1", "ifModifiedSince": "2999-01-01T00:00:00Z"}}))
    assert response.json()["entry"][0]["response"]["status"] == "304 Not Modified"


def test_patch_entry_applies_a_json_patch(client: TestClient) -> None:
    seed(client, "Patient", "p-1", patient())
    operations = [{"op": "replace", "path": "/gender", "value": "male"}]
    response = send(client, transaction({
        "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                     "data": base64.b64encode(json.dumps(operations).encode()).decode()},
        "request": {"method": "PATCH", "url": "Patient/p-1"}}))
    assert response.json()["entry"][0]["response"]["etag"] == 'W/"2"'
    assert client.get("/fhir/Patient/p-1").json()["gender"] == "male"


# ------------------------------------------------------------------ all or nothing


def test_a_failure_in_the_middle_leaves_nothing_written(client: TestClient,
                                                        engine: Engine) -> None:
    seed(client, "Patient", "p-1", patient())
    before = count(engine, resource_history)
    bundle = transaction(
        post("urn:uuid:new", patient(identifier=[{"system": "urn:x", "value": "new"}])),
        post("urn:uuid:doc", {"resourceType": "DocumentReference", "status": "current",
                              "subject": {"reference": "urn:uuid:new"},
                              "content": [{"attachment": {
                                  "contentType": "application/pdf",
                                  "data": base64.b64encode(PDF_BYTES).decode()}}]}),
        post("urn:uuid:msg", communication(basedOn=None, subject={"reference": "urn:uuid:new"})),
        put("Patient/p-1", patient(id="p-1"), ifMatch='W/"9"') | {"fullUrl": "urn:uuid:bad"})
    response = send(client, bundle)
    assert response.status_code == 412
    assert "Bundle.entry[3] (fullUrl urn:uuid:bad)" in response.json()["issue"][0]["diagnostics"]
    assert count(engine, patients) == 1
    assert count(engine, media_assets) == 0
    assert count(engine, binaries) == 0
    assert count(engine, outbound_notifications) == 0
    assert count(engine, resource_history) == before


def test_an_invalid_resource_is_400_naming_entry_and_element(client: TestClient,
                                                             engine: Engine) -> None:
    response = send(client, transaction(
        post("urn:uuid:ok", patient()),
        post("urn:uuid:bad", patient(gender="robot"))))
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["diagnostics"].startswith("Bundle.entry[1] (fullUrl urn:uuid:bad)")
    assert issue["expression"] == ["Bundle.entry[1].resource.gender"]
    assert count(engine, patients) == 0


def test_unsupported_types_refuse_the_transaction_listing_them(client: TestClient,
                                                               engine: Engine) -> None:
    response = send(client, transaction(
        post("urn:uuid:p", patient()),
        post("urn:uuid:e1", {"resourceType": "Encounter", "status": "finished"}),
        post("urn:uuid:o", {"resourceType": "Observation", "status": "final"}),
        post("urn:uuid:e2", {"resourceType": "Encounter", "status": "finished"})))
    assert response.status_code == 400
    body = response.json()
    assert issue_codes(body) == ["not-supported", "not-supported"]
    text = json.dumps(body)
    assert "Encounter" in text and "Observation" in text
    assert body["issue"][0]["expression"] == ["Bundle.entry[1]", "Bundle.entry[3]"]
    assert count(engine, patients) == 0


def test_other_bundle_types_are_400_naming_the_type(client: TestClient) -> None:
    response = send(client, {"resourceType": "Bundle", "type": "collection", "entry": []})
    assert response.status_code == 400
    assert "collection" in response.json()["issue"][0]["diagnostics"]


def test_more_entries_than_the_limit_is_413(settings: Settings, engine: Engine) -> None:
    empty_tables(engine)
    limited = settings.model_copy(update={"bundle_max_entries": 2})
    with TestClient(create_app(limited, migrate=False)) as limited_client:
        response = send(limited_client, transaction(
            *(post(f"urn:uuid:{index}", patient()) for index in range(3))))
    assert response.status_code == 413
    assert "FHIR_BUNDLE_MAX_ENTRIES" in response.json()["issue"][0]["diagnostics"]


def test_an_empty_transaction_is_an_empty_response(client: TestClient) -> None:
    response = send(client, transaction())
    assert response.status_code == 200
    assert response.json()["entry"] == []


# ---------------------------------------------------------------- official examples


def _official(shared_data: Path, name: str) -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(
        (shared_data / "fhir-r4-examples" / "bundles" / name).read_text())
    return bundle


def test_official_transaction_example_supported_subset(client: TestClient,
                                                       shared_data: Path) -> None:
    bundle = _official(shared_data, "Bundle-bundle-transaction.json")
    # the $lookup entry is an operation on ValueSet, a type not served here
    bundle["entry"] = [e for e in bundle["entry"] if "$" not in e["request"]["url"]]
    seed(client, "Patient", "234", patient())
    seed(client, "Patient", "123a", patient())
    seed(client, "Patient", "123a", patient(gender="male"))
    seed(client, "Patient", "12334", patient())
    seed(client, "Patient", "gone", patient(identifier=[{"value": "123456"}]))
    response = send(client, bundle)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["201 Created", "201 Created", "201 Created", "201 Created", "200 OK",
                        "204 No Content", "204 No Content", "200 OK", "200 OK"]
    assert client.get("/fhir/Patient/123", headers=FHIR_JSON).status_code == 200
    assert client.get("/fhir/Patient/234").status_code == 410
    assert client.get("/fhir/Patient/gone").status_code == 410


def test_official_transaction_example_whole_is_refused_naming_valueset(
        client: TestClient, shared_data: Path, engine: Engine) -> None:
    response = send(client, _official(shared_data, "Bundle-bundle-transaction.json"))
    assert response.status_code == 400
    assert "ValueSet" in response.json()["issue"][0]["diagnostics"]
    assert count(engine, patients) == 0


def test_official_xds_example_supported_subset(client: TestClient, shared_data: Path) -> None:
    bundle = _official(shared_data, "Bundle-xds.json")
    bundle["entry"] = [e for e in bundle["entry"]
                       if e["resource"]["resourceType"] != "Practitioner"]
    # text/plain is not in the default media allow-list: the Binary carries a PNG here
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Binary":
            resource.update(contentType="image/png", data=base64.b64encode(PNG_BYTES).decode())
        if resource["resourceType"] == "DocumentReference":
            attachment = resource["content"][0]["attachment"]
            attachment["contentType"] = "image/png"
            attachment.pop("hash", None)
            attachment.pop("size", None)
    response = send(client, bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["201 Created"] * 3
    document = entries[0]["resource"]
    patient_ref = entries[1]["response"]["location"].split("/_history")[0]
    binary_ref = entries[2]["response"]["location"].split("/_history")[0]
    assert document["subject"]["reference"] == patient_ref
    assert document["content"][0]["attachment"]["url"] == binary_ref
    assert document["author"][0]["reference"] == "Practitioner/a3"  # kept as given


# -------------------------------------------------------------------------- Synthea


def synthea_subset(path: Path) -> dict[str, Any]:
    """The Patient and DocumentReferences of a Synthea bundle, each created only if none
    exists with its identifier; note text is dropped (text/plain is not an allowed type)."""
    bundle: dict[str, Any] = json.loads(path.read_text())
    kept = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] not in SERVED:
            continue
        entry = copy.deepcopy(entry)
        for content in entry["resource"].get("content", []):
            content["attachment"].pop("data", None)
        identifier = entry["resource"]["identifier"][0]
        entry["request"]["ifNoneExist"] = (
            f"identifier={identifier['system']}|{identifier['value']}")
        kept.append(entry)
    bundle["entry"] = kept
    return bundle


@pytest.fixture
def synthea_bundles(shared_data: Path) -> Iterator[list[Path]]:
    yield sorted((shared_data / "synthea" / "bundles").glob("*.json"),
                 key=lambda path: path.stat().st_size)[:2]


def test_synthea_bundle_as_sent_is_refused_naming_encounter(
        client: TestClient, synthea_bundles: list[Path], engine: Engine) -> None:
    response = send(client, json.loads(synthea_bundles[0].read_text()))
    assert response.status_code == 400
    assert "Encounter" in response.json()["issue"][0]["diagnostics"]
    assert count(engine, patients) == 0


def test_synthea_subset_sent_twice_creates_nothing_new(
        client: TestClient, synthea_bundles: list[Path], engine: Engine) -> None:
    for path in synthea_bundles:
        bundle = synthea_subset(path)
        first = send(client, bundle)
        assert first.status_code == 200, first.text[:2000]
        assert {e["response"]["status"] for e in first.json()["entry"]} == {"201 Created"}
    counts = (count(engine, patients), count(engine, media_assets),
              count(engine, resource_history))
    for path in synthea_bundles:
        again = send(client, synthea_subset(path))
        assert {e["response"]["status"] for e in again.json()["entry"]} == {"200 OK"}
    assert (count(engine, patients), count(engine, media_assets),
            count(engine, resource_history)) == counts
    assert counts[0] == len(synthea_bundles)


# ------------------------------------------------------------ Patients written at once


def test_patients_of_a_transaction_are_searchable_like_posted_ones(client: TestClient) -> None:
    send(client, transaction(post("urn:uuid:a", patient()), post("urn:uuid:b", patient(
        identifier=[{"system": "urn:x", "value": "b"}], name=[{"family": "Okafor"}]))))
    for query in ("family=Rivera", "phone=6174952000", "email=ana.rivera@example.org",
                  "identifier=urn:x|b", "birthdate=1984-03-09", "address-city=Boston"):
        found = client.get(f"/fhir/Patient?{query}", headers=FHIR_JSON).json()
        assert found["total"] >= 1, query
    history = client.get("/fhir/Patient/_history", headers=FHIR_JSON).json()
    assert history["total"] == 2
    assert {e["request"]["method"] for e in history["entry"]} == {"POST"}


def test_the_same_client_mrn_twice_is_409_naming_the_second_entry(client: TestClient,
                                                                  engine: Engine) -> None:
    mrn = [{"system": "urn:prm:mrn", "value": "MRN-2024000001"}]
    response = send(client, transaction(post("urn:uuid:a", patient(identifier=mrn)),
                                        post("urn:uuid:b", patient(identifier=mrn))))
    assert response.status_code == 409
    assert "Bundle.entry[1] (fullUrl urn:uuid:b)" in response.json()["issue"][0]["diagnostics"]
    assert count(engine, patients) == 0


def test_a_client_mrn_already_taken_is_409(client: TestClient) -> None:
    mrn = [{"system": "urn:prm:mrn", "value": "MRN-2024000002"}]
    seed(client, "Patient", "p-1", patient(identifier=mrn))
    response = send(client, transaction(post("urn:uuid:a", patient(identifier=mrn))))
    assert response.status_code == 409
    assert "MRN-2024000002" in response.json()["issue"][0]["diagnostics"]


def test_generated_mrns_are_unique_across_a_large_transaction(client: TestClient,
                                                              engine: Engine) -> None:
    response = send(client, transaction(*(post(f"urn:uuid:{index}", patient(
        identifier=[{"system": "urn:x", "value": str(index)}])) for index in range(300))),
        Prefer="return=minimal")
    assert response.status_code == 200
    with engine.connect() as connection:
        mrns = connection.execute(select(patients.c.mrn)).scalars().all()
    assert len(mrns) == len(set(mrns)) == 300


def test_concurrent_readers_never_see_part_of_a_transaction(client: TestClient,
                                                            engine: Engine) -> None:
    size = 200
    entries = [post(f"urn:uuid:p{index}", patient(
        identifier=[{"system": "urn:x", "value": str(index)}])) for index in range(size)]
    entries += [post(f"urn:uuid:c{index}", communication(
        basedOn=None, subject={"reference": f"urn:uuid:p{index}"})) for index in range(40)]
    seen: set[tuple[int, int]] = set()
    done = threading.Event()
    both = select(select(func.count()).select_from(patients).scalar_subquery(),
                  select(func.count()).select_from(outbound_notifications).scalar_subquery())

    def counts() -> tuple[int, int]:
        with engine.connect() as connection:  # one statement: one snapshot
            row = connection.execute(both).one()
        return int(row[0]), int(row[1])

    def watch() -> None:
        while not done.is_set():
            seen.add(counts())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        response = send(client, transaction(*entries), Prefer="return=minimal")
    finally:
        done.set()
        watcher.join()
    assert response.status_code == 200
    seen.add(counts())
    assert seen <= {(0, 0), (size, 40)}, sorted(seen)[:5]


def test_a_drawn_mrn_taken_by_a_concurrent_writer_is_drawn_again(
        client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = "MRN-2026123456"
    seed(client, "Patient", "p-1", patient(identifier=[{"system": "urn:prm:mrn",
                                                        "value": taken}]))
    draws = iter([taken, "MRN-2026654321"])
    monkeypatch.setattr("storage.patient_repository.generate_mrn", lambda _moment: next(draws))
    repository = client.app.state.services.patients  # type: ignore[attr-defined]
    real_taken = repository._taken_mrns
    calls = {"count": 0}

    async def not_yet_visible(mrns: list[str]) -> set[str]:
        calls["count"] += 1
        return set() if calls["count"] <= 2 else await real_taken(mrns)  # the writer's commit

    monkeypatch.setattr(repository, "_taken_mrns", not_yet_visible)
    response = send(client, transaction(post("urn:uuid:a", patient(
        identifier=[{"system": "urn:x", "value": "new"}]))))
    assert response.status_code == 200, response.text
    with engine.connect() as connection:
        mrns = set(connection.execute(select(patients.c.mrn)).scalars())
    assert mrns == {taken, "MRN-2026654321"}
