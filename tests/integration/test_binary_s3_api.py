"""The file API with the S3 blob store (``FHIR_BLOB_URL=s3://bucket/prefix``) against a real
S3-compatible server (moto, started by the test run): one object for identical uploads,
encryption at rest, presigned downloads and redirects, the refusals, the official examples."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.settings import Settings
from tests.conftest import empty_tables
from tests.factories import FHIR_JSON, PDF_BYTES, document_reference
from tests.s3_server import object_keys, s3_client

PREFIX = "prm/blobs"


def _client(settings: Settings, engine: Engine, bucket: str, **changes: Any) -> TestClient:
    empty_tables(engine)
    configured = settings.model_copy(update={"blob_url": f"s3://{bucket}/{PREFIX}", **changes})
    return TestClient(create_app(configured, migrate=False))


@pytest.fixture
def s3_client_app(settings: Settings, engine: Engine, s3_bucket: str) -> Iterator[TestClient]:
    with _client(settings, engine, s3_bucket) as client:
        yield client


def test_identical_uploads_make_one_encrypted_object(s3_client_app: TestClient,
                                                     s3_bucket: str) -> None:
    ids = []
    for _ in range(2):
        response = s3_client_app.post("/fhir/Binary", content=PDF_BYTES,
                                      headers={"Content-Type": "application/pdf"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    key = f"{PREFIX}/{hashlib.sha256(PDF_BYTES).hexdigest()}"
    assert object_keys(s3_bucket) == [key]
    assert s3_client().head_object(Bucket=s3_bucket, Key=key)["ServerSideEncryption"] == "AES256"
    for binary_id in ids:
        assert s3_client_app.get(f"/fhir/Binary/{binary_id}").content == PDF_BYTES
    s3_client_app.delete(f"/fhir/Binary/{ids[0]}")
    assert object_keys(s3_bucket) == [key]
    s3_client_app.delete(f"/fhir/Binary/{ids[1]}")
    assert object_keys(s3_bucket) == []


def test_download_url_is_presigned_and_works_over_plain_http(s3_client_app: TestClient,
                                                             s3_endpoint: str) -> None:
    created = s3_client_app.post("/fhir/DocumentReference", json=document_reference(),
                                 headers=FHIR_JSON).json()
    response = s3_client_app.get(f"/fhir/DocumentReference/{created['id']}/$download-url")
    assert response.status_code == 200, response.text
    parameters = {p["name"]: p for p in response.json()["parameter"]}
    url = parameters["url"]["valueUrl"]
    assert url.startswith(s3_endpoint) and "X-Amz-Expires=600" in url
    download = httpx.get(url)
    assert download.status_code == 200
    assert download.content == PDF_BYTES
    assert download.headers["content-type"] == "application/pdf"


def test_redirect_mode_answers_307_to_a_presigned_url(settings: Settings, engine: Engine,
                                                      s3_bucket: str) -> None:
    with _client(settings, engine, s3_bucket, binary_redirect=True) as client:
        created = client.post("/fhir/Binary", content=PDF_BYTES,
                              headers={"Content-Type": "application/pdf"}).json()
        response = client.get(f"/fhir/Binary/{created['id']}", follow_redirects=False)
        assert response.status_code == 307
        assert httpx.get(response.headers["location"]).content == PDF_BYTES
        fhir = client.get(f"/fhir/Binary/{created['id']}",
                          headers={"Accept": "application/fhir+json"})
        assert base64.b64decode(fhir.json()["data"]) == PDF_BYTES


def test_refusals_store_nothing(settings: Settings, engine: Engine, s3_bucket: str) -> None:
    with _client(settings, engine, s3_bucket, max_upload_bytes=100) as client:
        too_large = client.post("/fhir/Binary", content=b"%PDF-1.7\n" + b"x" * 200,
                                headers={"Content-Type": "application/pdf"})
        assert too_large.status_code == 413
        executable = client.post("/fhir/Binary", content=b"\x7fELF" + b"\x00" * 50,
                                 headers={"Content-Type": "application/pdf"})
        assert executable.status_code == 415
    assert object_keys(s3_bucket) == []


@pytest.mark.parametrize("name", ["Binary-example.json", "Binary-f006.json"])
def test_official_binary_examples_round_trip(s3_client_app: TestClient, shared_data: Path,
                                             name: str) -> None:
    example = json.loads((shared_data / "fhir-r4-examples" / name).read_text())
    response = s3_client_app.put(f"/fhir/Binary/{example['id']}", json=example, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    read = s3_client_app.get(f"/fhir/Binary/{example['id']}",
                             headers={"Accept": "application/fhir+json"}).json()
    read.pop("meta")
    sent = base64.b64decode("".join(example.pop("data").split()))
    assert base64.b64decode(read.pop("data")) == sent
    assert read == example


def test_official_document_reference_example_round_trips(s3_client_app: TestClient,
                                                         shared_data: Path) -> None:
    example = json.loads((shared_data / "fhir-r4-examples" / "DocumentReference-example.json"
                          ).read_text())
    response = s3_client_app.put(f"/fhir/DocumentReference/{example['id']}", json=example,
                                 headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    read = s3_client_app.get(f"/fhir/DocumentReference/{example['id']}").json()
    read.pop("meta")
    assert read == example


def _s3_calls(client: TestClient) -> list[str]:
    """The S3 operations the app's blob store sends from now on."""
    store = client.app.state.services.repositories["Binary"].store  # type: ignore[attr-defined]
    calls: list[str] = []
    store.client.meta.events.register("before-call.s3",
                                      lambda model, **_: calls.append(model.name))
    return calls


def test_new_content_is_put_once_without_a_head_and_read_without_one(
        s3_client_app: TestClient) -> None:
    calls = _s3_calls(s3_client_app)
    created = s3_client_app.post("/fhir/Binary", content=PDF_BYTES,
                                 headers={"Content-Type": "application/pdf"})
    assert created.status_code == 201, created.text
    assert calls == ["PutObject"]
    calls.clear()
    assert s3_client_app.get(f"/fhir/Binary/{created.json()['id']}").content == PDF_BYTES
    assert calls == ["GetObject"]


def test_known_content_is_looked_up_not_sent_again(s3_client_app: TestClient) -> None:
    s3_client_app.post("/fhir/Binary", content=PDF_BYTES,
                       headers={"Content-Type": "application/pdf"})
    calls = _s3_calls(s3_client_app)
    again = s3_client_app.post("/fhir/Binary", content=PDF_BYTES,
                               headers={"Content-Type": "application/pdf"})
    assert again.status_code == 201
    assert calls == ["HeadObject"]


def test_known_content_whose_object_was_lost_is_put_again(s3_client_app: TestClient,
                                                          s3_bucket: str) -> None:
    first = s3_client_app.post("/fhir/Binary", content=PDF_BYTES,
                               headers={"Content-Type": "application/pdf"}).json()
    for key in object_keys(s3_bucket):
        s3_client().delete_object(Bucket=s3_bucket, Key=key)
    second = s3_client_app.post("/fhir/Binary", content=PDF_BYTES,
                                headers={"Content-Type": "application/pdf"}).json()
    for created in (first, second):
        assert s3_client_app.get(f"/fhir/Binary/{created['id']}").content == PDF_BYTES


def test_lost_object_answers_410_before_any_byte(s3_client_app: TestClient,
                                                 s3_bucket: str) -> None:
    created = s3_client_app.post("/fhir/Binary", content=PDF_BYTES,
                                 headers={"Content-Type": "application/pdf"}).json()
    for key in object_keys(s3_bucket):
        s3_client().delete_object(Bucket=s3_bucket, Key=key)
    for headers in ({}, {"Range": "bytes=0-9"}, {"Accept": "application/fhir+json"}):
        response = s3_client_app.get(f"/fhir/Binary/{created['id']}", headers=headers)
        assert response.status_code == 410, headers
        assert response.json()["resourceType"] == "OperationOutcome"


LARGE = b"%PDF-1.7\n" + bytes(range(256)) * (9 * 4096)  # 9 MiB: above the multipart threshold


def test_large_upload_is_sent_to_s3_while_no_transaction_is_open(
        s3_client_app: TestClient) -> None:
    """A large file goes to S3 before the transaction that records it (``preplace``): a slow
    transfer never holds a database connection; inside the transaction only a HEAD checks
    the object is still there."""
    services = s3_client_app.app.state.services  # type: ignore[attr-defined]
    open_transactions = [0]
    seen: list[tuple[str, int]] = []
    sync_engine = services.engine.sync_engine

    def opened(*_: Any) -> None:
        open_transactions[0] += 1

    def closed(*_: Any) -> None:
        open_transactions[0] -= 1

    event.listen(sync_engine, "begin", opened)
    event.listen(sync_engine, "commit", closed)
    event.listen(sync_engine, "rollback", closed)
    services.repositories["Binary"].store.client.meta.events.register(
        "before-call.s3", lambda model, **_: seen.append((model.name, open_transactions[0])))
    created = s3_client_app.post("/fhir/Binary", content=LARGE,
                                 headers={"Content-Type": "application/pdf"})
    assert created.status_code == 201, created.text
    sent = [(name, open_count) for name, open_count in seen if name != "HeadObject"]
    assert {name for name, _ in sent} >= {"CreateMultipartUpload", "UploadPart",
                                          "CompleteMultipartUpload"}
    assert all(open_count == 0 for _, open_count in sent), seen
    assert [name for name, open_count in seen if open_count > 0] == ["HeadObject"]
    assert s3_client_app.get(f"/fhir/Binary/{created.json()['id']}").content == LARGE


def test_large_upload_of_a_refused_write_leaves_no_object(s3_client_app: TestClient,
                                                          s3_bucket: str) -> None:
    created = s3_client_app.post("/fhir/Binary", content=PDF_BYTES,
                                 headers={"Content-Type": "application/pdf"}).json()
    refused = s3_client_app.put(f"/fhir/Binary/{created['id']}", content=LARGE,
                                headers={"Content-Type": "application/pdf", "If-Match": 'W/"9"'})
    assert refused.status_code == 412, refused.text
    assert object_keys(s3_bucket) == [f"{PREFIX}/{hashlib.sha256(PDF_BYTES).hexdigest()}"]


def test_preplaced_object_removed_meanwhile_is_sent_again(s3_client_app: TestClient,
                                                          s3_bucket: str) -> None:
    """Bytes sent ahead may be removed as unused before their transaction records them (a
    removal of the same content released elsewhere); ``commit`` then sends them again."""
    store = s3_client_app.app.state.services.repositories["Binary"].store  # type: ignore[attr-defined]

    async def chunks() -> AsyncIterator[bytes]:
        yield LARGE

    async def not_held() -> bool:
        return False

    async def scenario() -> bool:
        staged = await store.stage(chunks(), max_bytes=len(LARGE))
        assert await store.preplace(staged, unless=not_held)
        await store.delete(staged.info.sha256)
        await store.commit(staged, new=True)
        return bool(await store.exists(staged.info.sha256))

    assert asyncio.run(scenario())
    assert object_keys(s3_bucket) == [f"{PREFIX}/{hashlib.sha256(LARGE).hexdigest()}"]


def test_large_content_held_already_is_not_sent_ahead_again(s3_client_app: TestClient) -> None:
    first = s3_client_app.post("/fhir/Binary", content=LARGE,
                               headers={"Content-Type": "application/pdf"})
    assert first.status_code == 201, first.text
    calls = _s3_calls(s3_client_app)
    again = s3_client_app.post("/fhir/Binary", content=LARGE,
                               headers={"Content-Type": "application/pdf"})
    assert again.status_code == 201, again.text
    assert calls == ["HeadObject"]


def test_new_content_is_put_inside_the_transaction_and_committed_only_after_it(
        s3_client_app: TestClient) -> None:
    """The PUT of new small content runs inside the write's transaction (under the blob's
    lock); the commit follows S3's answer."""
    services = s3_client_app.app.state.services  # type: ignore[attr-defined]
    steps: list[str] = []
    sync_engine = services.engine.sync_engine
    event.listen(sync_engine, "begin", lambda *_: steps.append("begin"))
    event.listen(sync_engine, "commit", lambda *_: steps.append("commit"))
    s3 = services.repositories["Binary"].store.client.meta.events
    s3.register("before-call.s3.PutObject", lambda **_: steps.append("put sent"))
    s3.register("after-call.s3.PutObject", lambda **_: steps.append("put answered"))
    created = s3_client_app.post("/fhir/Binary", content=PDF_BYTES,
                                 headers={"Content-Type": "application/pdf"})
    assert created.status_code == 201, created.text
    put_sent = steps.index("put sent")
    assert "begin" in steps[:put_sent]
    assert steps[put_sent:].index("put answered") < steps[put_sent:].index("commit")
    assert s3_client_app.get(f"/fhir/Binary/{created.json()['id']}").content == PDF_BYTES


def _stored_rows(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return (connection.execute(text("SELECT count(*) FROM binaries")).scalar_one(),
                connection.execute(text("SELECT count(*) FROM blobs")).scalar_one())


def _is_unavailable(response: httpx.Response) -> bool:
    issue = response.json()["issue"][0]
    return (response.status_code == 503 and response.headers["Retry-After"] == "5"
            and issue["code"] == "transient" and "S3 answered NoSuchBucket"
            in issue["diagnostics"])


@pytest.mark.parametrize("content", [PDF_BYTES, LARGE], ids=["small", "large"])
def test_an_unavailable_store_answers_503_and_keeps_no_record(
        settings: Settings, engine: Engine, s3_bucket: str, content: bytes) -> None:
    with _client(settings, engine, f"{s3_bucket}-absent") as client:
        response = client.post("/fhir/Binary", content=content,
                               headers={"Content-Type": "application/pdf"})
        assert _is_unavailable(response), response.text
        document = client.post("/fhir/DocumentReference", json=document_reference(),
                               headers=FHIR_JSON)
        assert _is_unavailable(document), document.text
    assert _stored_rows(engine) == (0, 0)


def test_reads_from_an_unavailable_store_answer_503(settings: Settings, engine: Engine,
                                                    s3_bucket: str) -> None:
    with _client(settings, engine, s3_bucket) as client:
        created = client.post("/fhir/Binary", content=PDF_BYTES,
                              headers={"Content-Type": "application/pdf"}).json()
    configured = settings.model_copy(update={"blob_url": f"s3://{s3_bucket}-absent/{PREFIX}"})
    with TestClient(create_app(configured, migrate=False)) as client:
        for headers in ({}, {"Range": "bytes=0-9"}, {"Accept": "application/fhir+json"}):
            response = client.get(f"/fhir/Binary/{created['id']}", headers=headers)
            assert _is_unavailable(response), (headers, response.text)


def test_an_unavailable_store_fails_only_its_batch_entry_and_rolls_back_a_transaction(
        settings: Settings, engine: Engine, s3_bucket: str) -> None:
    binary = {"resourceType": "Binary", "contentType": "application/pdf",
              "data": base64.b64encode(PDF_BYTES).decode()}
    patient = {"resourceType": "Patient", "name": [{"family": "Okafor"}]}
    entries = [{"resource": resource, "request": {"method": "POST", "url": kind}}
               for resource, kind in ((binary, "Binary"), (patient, "Patient"))]
    with _client(settings, engine, f"{s3_bucket}-absent") as client:
        batch = client.post("/fhir", headers=FHIR_JSON, json={
            "resourceType": "Bundle", "type": "batch", "entry": entries})
        assert batch.status_code == 200, batch.text
        failed, created = (entry["response"] for entry in batch.json()["entry"])
        assert failed["status"] == "503 Service Unavailable"
        assert failed["outcome"]["issue"][0]["code"] == "transient"
        assert created["status"] == "201 Created"
        transaction = client.post("/fhir", headers=FHIR_JSON, json={
            "resourceType": "Bundle", "type": "transaction", "entry": entries})
        assert _is_unavailable(transaction), transaction.text
        patients = client.get("/fhir/Patient", params={"family": "Okafor"}).json()
        assert patients["total"] == 1  # the batch's, not the transaction's
    assert _stored_rows(engine) == (0, 0)
