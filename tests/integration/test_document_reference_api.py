"""DocumentReference over the PRM's media assets (https://hl7.org/fhir/R4/documentreference.html):
attachments tied to Binaries (inline data stored, size and hash filled and checked), the PRM
columns, search with every parameter type, includes and chains across types, $stats and
$download-url; on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.settings import Settings
from storage.media_tables import binaries, blobs, media_assets
from tests.conftest import empty_tables
from tests.factories import FHIR_JSON, PDF_BYTES, document_reference, issue_codes, patient

SHA1_OF_PDF = base64.b64encode(hashlib.sha1(PDF_BYTES).digest()).decode()
SOURCE_URL = "urn:prm:fhir:StructureDefinition:document-source"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
TYPES = "urn:example:identifier-types"


def _create(client: TestClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/fhir/DocumentReference", json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _ids(client: TestClient, query: str) -> set[str]:
    response = client.get(f"/fhir/DocumentReference?{query}")
    assert response.status_code == 200, (query, response.text)
    return {entry["resource"]["id"] for entry in response.json().get("entry", [])
            if entry["search"]["mode"] == "match"}


def test_inline_data_becomes_a_binary_with_size_and_hash(client: TestClient) -> None:
    created = _create(client, document_reference())
    attachment = created["content"][0]["attachment"]
    assert "data" not in attachment
    assert attachment["url"].startswith("Binary/")
    assert attachment["size"] == len(PDF_BYTES)
    assert attachment["hash"] == SHA1_OF_PDF
    raw = client.get(f"/fhir/{attachment['url']}")
    assert raw.content == PDF_BYTES and raw.headers["content-type"] == "application/pdf"


def test_read_returns_what_was_written(client: TestClient) -> None:
    created = _create(client, document_reference())
    read = client.get(f"/fhir/DocumentReference/{created['id']}").json()
    assert read == created
    sent = document_reference()
    for key in ("extension", "identifier", "status", "type", "category", "subject", "date",
                "author", "description"):
        assert read[key] == sent[key], key


def test_prm_columns_hold_patient_category_source_and_file(client: TestClient,
                                                          engine: Engine) -> None:
    created = _create(client, document_reference())
    with engine.connect() as connection:
        row = connection.execute(select(media_assets).where(
            media_assets.c.id == created["id"])).mappings().one()
    assert row["patient_id"] == "p-1"
    assert row["category"] == "lab_result"
    assert row["source"] == "upload"
    assert row["content_type"] == "application/pdf"
    assert row["file_size"] == len(PDF_BYTES)
    assert row["sha256"] == hashlib.sha256(PDF_BYTES).hexdigest()
    assert row["binary_id"] == created["content"][0]["attachment"]["url"].split("/")[1]


def test_url_to_a_stored_binary_gets_its_size_and_hash(client: TestClient) -> None:
    binary = client.post("/fhir/Binary", content=PDF_BYTES,
                         headers={"Content-Type": "application/pdf"}).json()
    resource = document_reference(content=[{"attachment": {
        "contentType": "application/pdf", "url": f"Binary/{binary['id']}"}}])
    attachment = _create(client, resource)["content"][0]["attachment"]
    assert attachment["size"] == len(PDF_BYTES) and attachment["hash"] == SHA1_OF_PDF


def test_client_hash_that_does_not_match_the_bytes_is_400(client: TestClient) -> None:
    resource = document_reference()
    resource["content"][0]["attachment"]["hash"] = base64.b64encode(b"x" * 20).decode()
    response = client.post("/fhir/DocumentReference", json=resource, headers=FHIR_JSON)
    assert response.status_code == 400
    assert "hash" in response.json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/DocumentReference").json()["total"] == 0


@pytest.mark.parametrize("audit", [True, False])
def test_refused_document_leaves_no_binary_of_its_inline_data(
        settings: Settings, engine: Engine, audit: bool) -> None:
    """The Binary made from inline data is part of the document's write: when the document
    is refused after it (here by its hash), neither the Binary nor its bytes stay, with the
    audit trail on or off (``FHIR_AUDIT=false`` must not split the write)."""
    empty_tables(engine)
    resource = document_reference()
    resource["content"][0]["attachment"]["hash"] = base64.b64encode(b"x" * 20).decode()
    with TestClient(create_app(settings.model_copy(update={"audit": audit}),
                               migrate=False)) as client:
        response = client.post("/fhir/DocumentReference", json=resource, headers=FHIR_JSON)
        assert response.status_code == 400, response.text
        assert client.get("/fhir/Binary").json()["total"] == 0
    with engine.connect() as connection:
        assert connection.execute(select(binaries.c.id)).all() == []
        assert connection.execute(select(blobs.c.sha256)).all() == []
    blob_files = [path for path in (settings.data_dir / "blobs").rglob("*") if path.is_file()] \
        if (settings.data_dir / "blobs").exists() else []
    assert blob_files == []


def test_url_to_an_unknown_binary_is_400(client: TestClient) -> None:
    resource = document_reference(content=[{"attachment": {
        "contentType": "application/pdf", "url": "Binary/does-not-exist"}}])
    response = client.post("/fhir/DocumentReference", json=resource, headers=FHIR_JSON)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["DocumentReference.content[0].attachment.url"]


def test_absolute_url_of_another_server_is_kept_as_given(client: TestClient) -> None:
    attachment = {"contentType": "application/pdf", "url": "https://ehr.example.org/Binary/9",
                  "size": 12, "hash": "2jmj7l5rSw0yVb/vlWAYkK/YBwk="}
    created = _create(client, document_reference(content=[{"attachment": attachment}]))
    assert created["content"][0]["attachment"] == attachment


def test_inline_data_of_a_refused_type_is_415(client: TestClient) -> None:
    resource = document_reference(content=[{"attachment": {
        "contentType": "application/pdf",
        "data": base64.b64encode(b"\x7fELF\x02\x01" + b"\x00" * 40).decode()}}])
    response = client.post("/fhir/DocumentReference", json=resource, headers=FHIR_JSON)
    assert response.status_code == 415
    assert client.get("/fhir/Binary").json()["total"] == 0


def test_unknown_source_is_400_and_nothing_stored(client: TestClient) -> None:
    resource = document_reference(extension=[{"url": SOURCE_URL, "valueCode": "pigeon"}])
    response = client.post("/fhir/DocumentReference", json=resource, headers=FHIR_JSON)
    assert response.status_code == 400
    assert issue_codes(response.json()) == ["code-invalid"]
    assert client.get("/fhir/Binary").json()["total"] == 0


def test_missing_status_is_400(client: TestClient) -> None:
    resource = document_reference()
    del resource["status"]
    response = client.post("/fhir/DocumentReference", json=resource, headers=FHIR_JSON)
    assert response.status_code == 400


def test_delete_is_soft_and_the_row_stays(client: TestClient, engine: Engine) -> None:
    created = _create(client, document_reference())
    assert client.delete(f"/fhir/DocumentReference/{created['id']}").status_code == 204
    assert client.get(f"/fhir/DocumentReference/{created['id']}").status_code == 410
    with engine.connect() as connection:
        row = connection.execute(select(media_assets.c.deleted_at).where(
            media_assets.c.id == created["id"])).one()
    assert row[0] is not None


def test_update_and_history(client: TestClient) -> None:
    created = _create(client, document_reference())
    changed = created | {"status": "superseded"}
    response = client.put(f"/fhir/DocumentReference/{created['id']}", json=changed,
                          headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "superseded"
    first = client.get(f"/fhir/DocumentReference/{created['id']}/_history/1").json()
    assert first == created


SEARCH_CASES: list[tuple[str, set[str]]] = [
    ("status=current", {"lab", "photo"}),
    ("status=superseded", {"old"}),
    ("status:not=current", {"old"}),
    ("subject=Patient/p-1", {"lab", "old"}),
    ("patient=p-2", {"photo"}),
    ("subject:Patient=p-1", {"lab", "old"}),
    ("patient:missing=true", set()),
    ("category=http://loinc.org|11502-2", {"lab", "old"}),
    ("category=72170-4", {"photo"}),
    ("type=http://loinc.org|", {"lab", "old", "photo"}),
    ("contenttype=image/png", {"photo"}),
    ("contenttype=application/pdf", {"lab", "old"}),
    ("date=2024-05", {"lab"}),
    ("date=ge2024-01-01", {"lab", "photo"}),
    ("date=lt2024-01-01", {"old"}),
    ("date=2024-05-01T10:00:00Z", {"lab"}),
    ("description=blood", {"lab", "old"}),
    ("description:exact=Blood panel", {"lab"}),
    ("description:contains=anel", {"lab", "old"}),
    ("identifier=urn:example:documents|doc-1", {"lab"}),
    ("identifier=doc-2", {"old"}),
    ("author=Practitioner/pr-1", {"lab", "old"}),
    ("author:missing=true", {"photo"}),
    ("relatesto=DocumentReference/old", {"lab"}),
    ("relation=replaces", {"lab"}),
    ("relationship=replaces$DocumentReference/old", {"lab"}),
    ("relationship=replaces$old", {"lab"}),
    ("relationship=appends$DocumentReference/old", set()),
    ("relationship=replaces$DocumentReference/lab", set()),
    ("relationship:missing=false", {"lab"}),
    ("language=en", {"lab", "old"}),
    ("period=2024", {"photo"}),
    ("encounter=Encounter/e-1", {"photo"}),
    ("setting=394802001", {"photo"}),
    ("security-label=R", {"photo"}),
    ("facility=http://snomed.info/sct|225732001", {"photo"}),
    ("event=T-D8200", {"photo"}),
    ("format=urn:ihe:iti:xds:2017:mimeTypeSufficient", {"photo"}),
    ("custodian=Organization/o-1", {"photo"}),
    ("authenticator=Organization/o-1", {"photo"}),
    ("related=Patient/p-2", {"photo"}),
    ("location=Binary", set()),
    ("_tag=urn:tags|vip", {"photo"}),
    ("status=current&patient=p-1", {"lab"}),
    ("subject:Patient.name=rivera", {"lab", "old"}),
    ("subject:Patient.family=Nguyen", {"photo"}),
    # token: :of-type (any coding of the identifier's type), :not, :text, :missing
    (f"identifier:of-type={V2_0203}|FILL|doc-3", {"photo"}),
    (f"identifier:of-type={TYPES}|photo-id|doc-3", {"photo"}),  # the second coding
    (f"identifier:of-type={TYPES}|master|m-2", {"old"}),  # masterIdentifier
    (f"identifier:of-type={TYPES}|photo-id|doc-1", set()),
    (f"identifier:of-type={V2_0203}|photo-id|doc-3", set()),
    (f"identifier:of-type={TYPES}|master|m-2,{TYPES}|photo-id|doc-3", {"old", "photo"}),
    ("identifier=urn:example:masters|m-2", {"old"}),
    ("identifier:missing=false", {"lab", "old", "photo"}),
    ("identifier:not=urn:example:documents|doc-1", {"old", "photo"}),
    ("type:text=laboratory", {"lab", "old"}),
    ("type:not=http://loinc.org|72170-4", {"lab", "old"}),
    ("category:missing=true", set()),
    ("event:missing=true", {"lab", "old"}),
    ("security-label:not=R", {"lab", "old"}),
    # reference: :[type], :missing
    ("author:Practitioner=pr-1", {"lab", "old"}),
    ("author:Organization=pr-1", set()),
    ("custodian:missing=true", {"lab", "old"}),
    ("subject:missing=false", {"lab", "old", "photo"}),
    ("relatesto:missing=true", {"old", "photo"}),
    # string: any word, punctuation ignored; :exact keeps case; :contains
    ("description=first", {"old"}),
    ("description=(first draft)", {"old"}),
    ("description=panel", {"lab", "old"}),
    ("description:exact=blood panel", set()),
    ("description:exact=Blood panel (first draft)", {"old"}),
    ("description:contains=FIRST", {"old"}),
    ("description:missing=false", {"lab", "old", "photo"}),
    # date against an instant (date): lab 2024-05-01T10:00Z, old 2023-02-01T00:00Z,
    # photo 2024-06-01T08:00+02:00 (06:00Z)
    ("date=eq2024", {"lab", "photo"}),
    ("date=ne2024", {"old"}),
    ("date=2024-06-01T08:00:00%2B02:00", {"photo"}),
    ("date=2024-06-01T06:00Z", {"photo"}),
    ("date=2024-06-01T07:00:00%2B02:00", set()),
    ("date=gt2024-05-01", {"photo"}),
    ("date=lt2024-05-01T10:00:00Z", {"old"}),
    ("date=le2024-05-01T10:00:00Z", {"lab", "old"}),
    ("date=ge2024-06-01T06:00:00Z", {"photo"}),
    ("date=gt2024-06-01T06:00:00Z", set()),
    ("date=sa2023", {"lab", "photo"}),
    ("date=eb2024-06", {"lab", "old"}),
    ("date=ap2024-05-01", {"lab", "photo"}),
    ("date:missing=false", {"lab", "old", "photo"}),
    # date against a Period: photo 2024-06-01..2024-06-02, old from 2023-01-15T08:00Z on,
    # lab until the end of April 2024
    ("period=eq2024-06", {"photo"}),
    ("period=ne2024-06-01", {"lab", "old", "photo"}),
    ("period=ge2024-06-01", {"old", "photo"}),
    ("period=gt2024-06-02", {"old"}),
    ("period=lt2024", {"lab", "old"}),
    ("period=le2023-01-15T08:00:00Z", {"lab"}),
    ("period=ge2023-01-15T08:00:00Z", {"lab", "old", "photo"}),
    ("period=sa2024-04", {"photo"}),
    ("period=eb2024-05", {"lab"}),
    ("period=eb2023", set()),
    ("period=2023-01-15T09:00:00%2B01:00", set()),  # a second does not contain an open period
    ("period:missing=false", {"lab", "old", "photo"}),
]


def _dataset(client: TestClient) -> None:
    for patient_id, family in (("p-1", "Rivera"), ("p-2", "Nguyen")):
        body = patient(id=patient_id, name=[{"family": family, "given": ["Ana"]}],
                       identifier=[{"system": "urn:example:p", "value": patient_id}])
        assert client.put(f"/fhir/Patient/{patient_id}", json=body,
                          headers=FHIR_JSON).status_code == 201
    old = document_reference(id="old", status="superseded", date="2023-02-01T00:00:00Z",
                             identifier=[{"system": "urn:example:documents", "value": "doc-2"}],
                             masterIdentifier={"system": "urn:example:masters", "value": "m-2",
                                               "type": {"coding": [{"system": TYPES,
                                                                    "code": "master"}]}},
                             context={"period": {"start": "2023-01-15T09:00:00+01:00"}},
                             description="Blood panel (first draft)")
    lab = document_reference(id="lab", relatesTo=[{"code": "replaces",
                                                   "target": {"reference": "DocumentReference/old"}}],
                             context={"period": {"end": "2024-04"}})
    png = base64.b64encode(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )).decode()
    photo = document_reference(
        id="photo", meta={"tag": [{"system": "urn:tags", "code": "vip"}]},
        identifier=[{"system": "urn:example:documents", "value": "doc-3",
                     "type": {"coding": [{"system": V2_0203, "code": "FILL"},
                                         {"system": TYPES, "code": "photo-id"}]}}],
        subject={"reference": "Patient/p-2"}, author=None, description="Wound photo",
        type={"coding": [{"system": "http://loinc.org", "code": "72170-4"}]},
        category=[{"coding": [{"system": "http://loinc.org", "code": "72170-4"}]}],
        date="2024-06-01T08:00:00+02:00", custodian={"reference": "Organization/o-1"},
        authenticator={"reference": "Organization/o-1"},
        securityLabel=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                    "code": "R"}]}],
        context={"encounter": [{"reference": "Encounter/e-1"}],
                 "event": [{"coding": [{"system": "http://ihe.net/xds/connectathon/eventCodes",
                                        "code": "T-D8200"}]}],
                 "period": {"start": "2024-06-01", "end": "2024-06-02"},
                 "facilityType": {"coding": [{"system": "http://snomed.info/sct", "code": "225732001"}]},
                 "practiceSetting": {"coding": [{"system": "http://snomed.info/sct", "code": "394802001"}]},
                 "related": [{"reference": "Patient/p-2"}]},
        content=[{"attachment": {"contentType": "image/png", "data": png},
                  "format": {"system": "urn:oid:1.3.6.1.4.1.19376.1.2.3",
                             "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"}}])
    del photo["author"]
    for document in (old, lab, photo):
        response = client.put(f"/fhir/DocumentReference/{document['id']}", json=document,
                              headers=FHIR_JSON)
        assert response.status_code == 201, response.text


def test_search_table(client: TestClient) -> None:
    _dataset(client)
    failures = [f"{query}: expected {sorted(expected)}, got {sorted(found)}"
                for query, expected in SEARCH_CASES
                if (found := _ids(client, query)) != expected]
    assert not failures, "\n".join(failures)


def test_include_subject_and_revinclude_from_patient(client: TestClient) -> None:
    _dataset(client)
    bundle = client.get("/fhir/DocumentReference?_id=photo&_include=DocumentReference:subject"
                        ).json()
    modes = {(e["resource"]["resourceType"], e["resource"]["id"], e["search"]["mode"])
             for e in bundle["entry"]}
    assert modes == {("DocumentReference", "photo", "match"), ("Patient", "p-2", "include")}
    assert bundle["entry"][1]["fullUrl"].endswith("/Patient/p-2")
    patients = client.get("/fhir/Patient?_id=p-1&_revinclude=DocumentReference:patient").json()
    assert {(e["resource"]["resourceType"], e["resource"]["id"]) for e in patients["entry"]} == {
        ("Patient", "p-1"), ("DocumentReference", "lab"), ("DocumentReference", "old")}


def test_has_finds_patients_by_their_documents(client: TestClient) -> None:
    _dataset(client)
    response = client.get("/fhir/Patient?_has:DocumentReference:patient:status=superseded")
    assert response.status_code == 200, response.text
    assert [e["resource"]["id"] for e in response.json()["entry"]] == ["p-1"]


def test_sort_by_date_descending(client: TestClient) -> None:
    _dataset(client)
    bundle = client.get("/fhir/DocumentReference?_sort=-date").json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["photo", "lab", "old"]


def test_conditional_create_finds_by_identifier(client: TestClient) -> None:
    created = _create(client, document_reference())
    response = client.post("/fhir/DocumentReference", json=document_reference(),
                           headers=FHIR_JSON | {"If-None-Exist":
                                                "identifier=urn:example:documents|doc-1"})
    assert response.status_code == 200
    assert response.json()["id"] == created["id"]


def test_stats_count_files_bytes_and_deduplication(client: TestClient) -> None:
    _create(client, document_reference())
    _create(client, document_reference(extension=[{"url": SOURCE_URL, "valueCode": "whatsapp"}]))
    response = client.get("/fhir/DocumentReference/$stats")
    assert response.status_code == 200
    values: dict[str, Any] = {}
    groups: dict[str, dict[str, int]] = {}
    for parameter in response.json()["parameter"]:
        if "part" in parameter:
            parts = {part["name"]: part for part in parameter["part"]}
            groups.setdefault(parameter["name"], {})[parts["value"]["valueString"]] = \
                parts["count"]["valueInteger"]
        else:
            values[parameter["name"]] = parameter.get("valueInteger",
                                                      parameter.get("valueDecimal"))
    assert values["fileCount"] == 2
    assert values["bytes"] == 2 * len(PDF_BYTES)
    assert values["bytesStored"] == len(PDF_BYTES)
    assert values["bytesSavedByDeduplication"] == len(PDF_BYTES)
    assert values["averageSize"] == len(PDF_BYTES)
    assert groups["bySource"] == {"upload": 1, "whatsapp": 1}
    assert groups["byCategory"] == {"lab_result": 2}
    assert groups["byContentType"] == {"application/pdf": 2}


def test_download_url_of_a_document_serves_its_file(client: TestClient) -> None:
    created = _create(client, document_reference())
    response = client.get(f"/fhir/DocumentReference/{created['id']}/$download-url")
    assert response.status_code == 200, response.text
    url = response.json()["parameter"][0]["valueUrl"]
    assert client.get(url.removeprefix("http://testserver")).content == PDF_BYTES


@pytest.mark.parametrize("name", ["DocumentReference-example.json"])
def test_official_example_round_trips(client: TestClient, shared_data: Any, name: str) -> None:
    import json

    example = json.loads((shared_data / "fhir-r4-examples" / name).read_text())
    response = client.put(f"/fhir/DocumentReference/{example['id']}", json=example,
                          headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    read = client.get(f"/fhir/DocumentReference/{example['id']}").json()
    meta = read.pop("meta")
    assert meta["versionId"] == "1"
    assert read == example


def test_elements_do_not_apply_to_included_resources(client: TestClient) -> None:
    _dataset(client)
    bundle = client.get("/fhir/DocumentReference?_id=photo&_include=DocumentReference:subject"
                        "&_elements=status").json()
    matched, included = bundle["entry"]
    assert set(matched["resource"]) <= {"resourceType", "id", "meta", "status"}
    assert included["resource"]["name"] == [{"family": "Nguyen", "given": ["Ana"]}]
