"""Binary over HTTP (https://hl7.org/fhir/R4/binary.html): raw and FHIR JSON uploads, raw and
FHIR reads, Range, deduplication, the media policy (413, 415, 400), signed download links and
deletion of unused blobs; on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from fhir_server.settings import Settings
from storage.media_tables import binaries, blobs
from tests.factories import FHIR_JSON, PDF_BYTES, issue_codes

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
FHIR_ACCEPT = {"Accept": "application/fhir+json"}


def _upload(client: TestClient, data: bytes, content_type: str = "application/pdf",
            **headers: str) -> dict[str, Any]:
    response = client.post("/fhir/Binary", content=data,
                           headers={"Content-Type": content_type, **headers})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _blob_files(settings: Settings) -> list[Path]:
    root = settings.data_dir / "blobs"
    return [p for p in root.rglob("*") if p.is_file() and ".staging" not in p.parts]


def test_raw_upload_reads_back_as_the_same_bytes_and_type(client: TestClient) -> None:
    created = _upload(client, PDF_BYTES)
    assert created["resourceType"] == "Binary" and created["contentType"] == "application/pdf"
    assert "data" not in created
    response = client.get(f"/fhir/Binary/{created['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content == PDF_BYTES
    assert response.headers["etag"] == 'W/"1"'


def test_location_header_names_the_new_version(client: TestClient) -> None:
    response = client.post("/fhir/Binary", content=PNG, headers={"Content-Type": "image/png"})
    assert response.headers["location"].endswith(f"/Binary/{response.json()['id']}/_history/1")


def test_fhir_json_read_carries_base64_data(client: TestClient) -> None:
    created = _upload(client, PNG, "image/png")
    for request in ({"headers": FHIR_ACCEPT}, {"params": {"_format": "json"}}):
        response = client.get(f"/fhir/Binary/{created['id']}", **request)
        body = response.json()
        assert body["resourceType"] == "Binary"
        assert base64.b64decode(body["data"]) == PNG
        assert body["contentType"] == "image/png"


def test_fhir_json_create_stores_the_decoded_bytes(client: TestClient) -> None:
    response = client.post("/fhir/Binary", json={
        "resourceType": "Binary", "contentType": "application/pdf",
        "securityContext": {"reference": "Patient/p-1"},
        "data": base64.b64encode(PDF_BYTES).decode()}, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    raw = client.get(f"/fhir/Binary/{response.json()['id']}")
    assert raw.content == PDF_BYTES
    assert raw.headers["x-security-context"] == "Patient/p-1"


def test_security_context_header_is_kept(client: TestClient) -> None:
    created = _upload(client, PDF_BYTES, **{"X-Security-Context": "DocumentReference/d-1"})
    assert created["securityContext"] == {"reference": "DocumentReference/d-1"}


def test_range_request_answers_206_with_the_slice(client: TestClient) -> None:
    created = _upload(client, PDF_BYTES)
    response = client.get(f"/fhir/Binary/{created['id']}", headers={"Range": "bytes=5-9"})
    assert response.status_code == 206
    assert response.content == PDF_BYTES[5:10]
    assert response.headers["content-range"] == f"bytes 5-9/{len(PDF_BYTES)}"
    suffix = client.get(f"/fhir/Binary/{created['id']}", headers={"Range": "bytes=-4"})
    assert suffix.content == PDF_BYTES[-4:]


def test_unsatisfiable_range_is_416(client: TestClient) -> None:
    created = _upload(client, PDF_BYTES)
    response = client.get(f"/fhir/Binary/{created['id']}", headers={"Range": "bytes=9999-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(PDF_BYTES)}"


def test_same_bytes_twice_are_stored_once(client: TestClient, settings: Settings,
                                          engine: Engine) -> None:
    first = _upload(client, PDF_BYTES)
    second = _upload(client, PDF_BYTES)
    assert first["id"] != second["id"]
    assert len(_blob_files(settings)) == 1
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(blobs)).scalar_one() == 1
        digest = connection.execute(select(binaries.c.sha256)).scalars().all()
    assert set(digest) == {hashlib.sha256(PDF_BYTES).hexdigest()}


def test_blob_is_removed_when_its_last_binary_is_deleted(client: TestClient,
                                                         settings: Settings) -> None:
    first = _upload(client, PDF_BYTES)
    second = _upload(client, PDF_BYTES)
    assert client.delete(f"/fhir/Binary/{first['id']}").status_code == 204
    assert len(_blob_files(settings)) == 1
    assert client.get(f"/fhir/Binary/{second['id']}").content == PDF_BYTES
    assert client.delete(f"/fhir/Binary/{second['id']}").status_code == 204
    assert _blob_files(settings) == []
    assert client.get(f"/fhir/Binary/{second['id']}").status_code == 410


def test_update_with_new_bytes_makes_version_two(client: TestClient, settings: Settings) -> None:
    created = _upload(client, PDF_BYTES)
    response = client.put(f"/fhir/Binary/{created['id']}", content=PNG,
                          headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["versionId"] == "2"
    assert client.get(f"/fhir/Binary/{created['id']}").content == PNG
    assert len(_blob_files(settings)) == 1  # the PDF was used by no live Binary any more
    history = client.get(f"/fhir/Binary/{created['id']}/_history").json()
    assert history["total"] == 2


def test_put_to_a_new_id_creates(client: TestClient) -> None:
    response = client.put("/fhir/Binary/new-file-1", content=PNG,
                          headers={"Content-Type": "image/png"})
    assert response.status_code == 201, response.text
    assert client.get("/fhir/Binary/new-file-1").content == PNG


def test_stale_if_match_is_412_and_keeps_the_content(client: TestClient) -> None:
    created = _upload(client, PDF_BYTES)
    response = client.put(f"/fhir/Binary/{created['id']}", content=PNG,
                          headers={"Content-Type": "image/png", "If-Match": 'W/"5"'})
    assert response.status_code == 412
    assert client.get(f"/fhir/Binary/{created['id']}").content == PDF_BYTES


def test_too_large_is_413_and_stores_nothing(settings: Settings, engine: Engine) -> None:
    from fhir_server.app import create_app
    from tests.conftest import empty_tables

    empty_tables(engine)
    small = settings.model_copy(update={"max_upload_bytes": 1000})
    with TestClient(create_app(small, migrate=False)) as client:
        response = client.post("/fhir/Binary", content=b"%PDF-1.7\n" + b"x" * 2000,
                               headers={"Content-Type": "application/pdf"})
        assert response.status_code == 413
        assert "FHIR_MAX_UPLOAD_BYTES" in response.json()["issue"][0]["diagnostics"]
        assert client.get("/fhir/Binary").json().get("total") == 0
    assert _blob_files(small) == []
    assert not list((small.data_dir / "blobs" / ".staging").glob("*"))


@pytest.mark.parametrize(("content_type", "data"), [
    ("application/pdf", b"\x7fELF\x02\x01\x01" + b"\x00" * 60),   # an executable named PDF
    ("application/pdf", b"MZ\x90\x00" + b"\x00" * 60),
    ("image/png", JPEG),                                          # a JPEG named PNG
    ("application/x-msdownload", b"MZ\x90\x00"),                  # not on the allow-list
    ("text/html", b"<html></html>"),
])
def test_refused_types_are_415(client: TestClient, content_type: str, data: bytes) -> None:
    response = client.post("/fhir/Binary", content=data, headers={"Content-Type": content_type})
    assert response.status_code == 415, response.text
    assert issue_codes(response.json()) == ["not-supported"]


def test_empty_upload_is_400(client: TestClient) -> None:
    response = client.post("/fhir/Binary", content=b"", headers={"Content-Type": "image/png"})
    assert response.status_code == 400
    assert "empty" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("body", [
    {"resourceType": "Binary", "contentType": "application/pdf"},
    {"resourceType": "Binary", "contentType": "application/pdf", "data": "@@not base64@@"},
])
def test_fhir_json_without_valid_data_is_400(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/fhir/Binary", json=body, headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    assert "Binary.data" in response.text


def test_patch_is_405(client: TestClient) -> None:
    created = _upload(client, PDF_BYTES)
    response = client.patch(f"/fhir/Binary/{created['id']}", content=b"[]",
                            headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 405


def test_download_url_is_signed_and_serves_the_bytes(client: TestClient) -> None:
    created = _upload(client, PDF_BYTES)
    response = client.get(f"/fhir/Binary/{created['id']}/$download-url")
    assert response.status_code == 200
    parameters = {p["name"]: p for p in response.json()["parameter"]}
    url = parameters["url"]["valueUrl"]
    assert parameters["expires"]["valueInstant"].endswith("Z")
    download = client.get(url.removeprefix("http://testserver"))
    assert download.status_code == 200 and download.content == PDF_BYTES
    forged = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    assert client.get(forged.removeprefix("http://testserver")).status_code == 403


def test_expired_download_link_is_403(client: TestClient) -> None:
    from fhir_server.media import download_links

    created = _upload(client, PDF_BYTES)
    key = client.app.state.services.link_key  # type: ignore[attr-defined]
    token = download_links.sign(key, created["id"], 1, expires_at=1)
    response = client.get(f"/download/{token}")
    assert response.status_code == 403
    assert "expired" in response.text


def test_search_by_id_finds_the_binary_without_data(client: TestClient) -> None:
    created = _upload(client, PDF_BYTES)
    bundle = client.get("/fhir/Binary", params={"_id": created["id"]}).json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [created["id"]]
    assert "data" not in bundle["entry"][0]["resource"]


@pytest.mark.parametrize("name", ["Binary-example.json", "Binary-f006.json"])
def test_official_examples_round_trip(client: TestClient, shared_data: Path, name: str) -> None:
    """The bytes and every element come back; ``data`` is re-encoded without the line breaks
    base64Binary allows, so it is compared decoded."""
    import json

    example = json.loads((shared_data / "fhir-r4-examples" / name).read_text())
    response = client.put(f"/fhir/Binary/{example['id']}", json=example, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    read = client.get(f"/fhir/Binary/{example['id']}", headers=FHIR_ACCEPT).json()
    assert read.pop("meta")["versionId"] == "1"
    sent_bytes = base64.b64decode("".join(example.pop("data").split()))
    assert base64.b64decode(read.pop("data")) == sent_bytes
    assert read == example
    raw = client.get(f"/fhir/Binary/{example['id']}")
    assert raw.content == sent_bytes and raw.headers["content-type"] == example["contentType"]


def test_lost_bytes_answer_410_not_a_server_error(client: TestClient, settings: Settings) -> None:
    created = _upload(client, PDF_BYTES)
    for path in _blob_files(settings):
        path.unlink()  # the store lost the bytes (an operator removed them)
    assert client.get(f"/fhir/Binary/{created['id']}").status_code == 410
    assert client.get(f"/fhir/Binary/{created['id']}", headers=FHIR_ACCEPT).status_code == 410
    link = client.get(f"/fhir/Binary/{created['id']}/$download-url")
    assert link.status_code == 200
    url = link.json()["parameter"][0]["valueUrl"]
    assert client.get(url.removeprefix("http://testserver")).status_code == 410


def _stored_rows(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return (connection.execute(select(func.count()).select_from(binaries)).scalar_one(),
                connection.execute(select(func.count()).select_from(blobs)).scalar_one())


def _disk_failed(response: Any) -> bool:
    issue = response.json()["issue"][0]
    return (response.status_code == 503 and response.headers["Retry-After"] == "5"
            and issue["code"] == "transient" and "the server's disk failed" in
            issue["diagnostics"] and "/" not in issue["diagnostics"])


def test_a_disk_that_cannot_take_the_upload_answers_503_and_keeps_no_record(
        client: TestClient, settings: Settings, engine: Engine) -> None:
    staging = settings.data_dir / "blobs" / ".staging"
    staging.parent.mkdir(parents=True, exist_ok=True)
    staging.write_bytes(b"")  # a file where the staging folder should be
    response = client.post("/fhir/Binary", content=PDF_BYTES,
                           headers={"Content-Type": "application/pdf"})
    assert _disk_failed(response), response.text
    assert _stored_rows(engine) == (0, 0)


def test_a_disk_that_cannot_place_the_file_answers_503_and_keeps_no_record(
        client: TestClient, settings: Settings, engine: Engine) -> None:
    sha256 = hashlib.sha256(PDF_BYTES).hexdigest()
    blocked = settings.data_dir / "blobs" / sha256[:2]
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_bytes(b"")  # a file where the blob's folder should be
    response = client.post("/fhir/Binary", content=PDF_BYTES,
                           headers={"Content-Type": "application/pdf"})
    assert _disk_failed(response), response.text
    assert _stored_rows(engine) == (0, 0)
    blocked.unlink()
    assert client.post("/fhir/Binary", content=PDF_BYTES,
                       headers={"Content-Type": "application/pdf"}).status_code == 201


def test_a_blob_the_disk_cannot_read_answers_503(client: TestClient,
                                                 settings: Settings) -> None:
    created = _upload(client, PDF_BYTES)
    (path,) = _blob_files(settings)
    path.unlink()
    path.mkdir()  # a folder where the blob's file should be
    for headers in ({}, {"Range": "bytes=0-9"}, FHIR_ACCEPT):
        response = client.get(f"/fhir/Binary/{created['id']}", headers=headers)
        assert _disk_failed(response), (headers, response.text)


@pytest.mark.parametrize("ignored", ["items=0-1", "bytes=0-1,3-4", "bytes=5-2", "bytes=abc",
                                     "bytes=", "0-9"])
def test_a_range_a_server_must_or_may_ignore_answers_the_whole_file(
        client: TestClient, ignored: str) -> None:
    """RFC 9110 14.2: an unknown unit must be ignored; a malformed range and several ranges
    at once may be, and are (no multipart/byteranges here)."""
    created = _upload(client, PDF_BYTES)
    response = client.get(f"/fhir/Binary/{created['id']}", headers={"Range": ignored})
    assert response.status_code == 200, ignored
    assert response.content == PDF_BYTES and "content-range" not in response.headers


@pytest.mark.parametrize("unsatisfiable", ["bytes=-0", "bytes=9999-", "bytes=9999-10000"])
def test_a_range_that_cannot_be_met_is_416(client: TestClient, unsatisfiable: str) -> None:
    created = _upload(client, PDF_BYTES)
    response = client.get(f"/fhir/Binary/{created['id']}", headers={"Range": unsatisfiable})
    assert response.status_code == 416, unsatisfiable
    assert response.headers["content-range"] == f"bytes */{len(PDF_BYTES)}"


def test_if_range_lets_the_range_through_only_for_the_same_last_modified(
        client: TestClient) -> None:
    """RFC 9110 13.1.5: If-Range compares strongly, so the Binary's weak ETag never matches;
    its Last-Modified does, an older date does not (the file changed: send all of it)."""
    created = _upload(client, PDF_BYTES)
    url = f"/fhir/Binary/{created['id']}"
    whole = client.get(url)
    same_date = client.get(url, headers={"Range": "bytes=0-3",
                                         "If-Range": whole.headers["last-modified"]})
    assert same_date.status_code == 206 and same_date.content == PDF_BYTES[:4]
    for validator in (whole.headers["etag"], "Mon, 01 Jan 2001 00:00:00 GMT", "not a date"):
        response = client.get(url, headers={"Range": "bytes=0-3", "If-Range": validator})
        assert response.status_code == 200, validator
        assert response.content == PDF_BYTES


RANGE_HEADERS = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    st.builds(lambda first, last: f"bytes={first}-{last}",
              st.one_of(st.just(""), st.integers(0, 200).map(str)),
              st.one_of(st.just(""), st.integers(0, 200).map(str))),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=RANGE_HEADERS)
def test_any_range_header_answers_the_file_a_slice_of_it_or_416(client: TestClient,
                                                               header: str) -> None:
    binary_id = _upload(client, PDF_BYTES)["id"]
    response = client.get(f"/fhir/Binary/{binary_id}", headers={"Range": header})
    size = len(PDF_BYTES)
    if response.status_code == 200:
        assert response.content == PDF_BYTES
    elif response.status_code == 206:
        first, last = (int(n) for n in response.headers["content-range"]
                       .removeprefix("bytes ").split("/")[0].split("-"))
        assert 0 <= first <= last < size and response.content == PDF_BYTES[first:last + 1]
    else:
        assert response.status_code == 416, (header, response.status_code)
        assert response.headers["content-range"] == f"bytes */{size}"
