"""A blob's bytes go only after the transaction that released them has committed, and never
while a writer of the same bytes holds them: a rolled-back delete keeps the bytes, a removal
waits for a concurrent upload of identical content and then leaves its bytes alone. On
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert

from fhir_server.settings import Settings
from storage.blob_removal import lock_blob, remove_unused_blobs
from storage.blobs import BlobStore, FileBlobStore
from storage.database import create_engine
from storage.media_tables import blobs
from tests.factories import FHIR_JSON, PDF_BYTES

OTHER_PDF = PDF_BYTES + b"% another one\n"


def _blob_files(settings: Settings) -> list[Path]:
    return [path for path in (settings.data_dir / "blobs").rglob("*") if path.is_file()]


def _upload(client: TestClient, data: bytes) -> str:
    response = client.post("/fhir/Binary", content=data,
                           headers={"Content-Type": "application/pdf"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_delete_rolled_back_with_its_transaction_keeps_the_bytes(
        client: TestClient, settings: Settings) -> None:
    binary_id = _upload(client, PDF_BYTES)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": f"Binary/{binary_id}"}},
        {"request": {"method": "PUT", "url": "Patient/x", "ifMatch": 'W/"7"'},
         "resource": {"resourceType": "Patient", "id": "x"}}]}
    response = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 412, response.text
    assert len(_blob_files(settings)) == 1
    read = client.get(f"/fhir/Binary/{binary_id}")
    assert read.status_code == 200 and read.content == PDF_BYTES


def test_a_delete_that_commits_removes_the_bytes_after_it(
        client: TestClient, settings: Settings) -> None:
    binary_id = _upload(client, PDF_BYTES)
    kept = _upload(client, OTHER_PDF)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": f"Binary/{binary_id}"}},
        {"request": {"method": "POST", "url": "Binary"},
         "resource": {"resourceType": "Binary", "contentType": "application/pdf",
                      "data": base64.b64encode(OTHER_PDF).decode()}}]}
    assert client.post("/fhir", json=bundle, headers=FHIR_JSON).status_code == 200
    assert [path.name for path in _blob_files(settings)] == [
        hashlib.sha256(OTHER_PDF).hexdigest()]
    assert client.get(f"/fhir/Binary/{kept}").content == OTHER_PDF


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _race(settings: Settings, store: BlobStore) -> tuple[list[str], bool]:
    """A writer holds the lock of bytes it has placed but not committed; a removal of the
    same bytes starts meanwhile. What the removal deleted, and whether the bytes are there."""
    engine = create_engine(settings)
    staged = await store.stage(_chunks(PDF_BYTES), max_bytes=len(PDF_BYTES))
    sha256 = staged.info.sha256
    try:
        writer_locked = asyncio.Event()

        async def writer() -> None:
            async with engine.begin() as connection:
                await lock_blob(connection, sha256)
                await connection.execute(insert(blobs).values(
                    sha256=sha256, size=staged.info.size, sha1_base64=staged.info.sha1_base64,
                    stored_at=datetime.now(UTC)))
                await store.commit(staged, new=True)
                writer_locked.set()
                await asyncio.sleep(0.5)  # the removal starts now and must wait

        async def removal() -> list[str]:
            await writer_locked.wait()
            return await remove_unused_blobs(engine, store, [sha256])

        _, removed = await asyncio.gather(writer(), removal())
        return removed, await store.exists(sha256)
    finally:
        await store.discard(staged)
        await engine.dispose()


def test_a_removal_waits_for_a_writer_of_the_same_bytes_and_keeps_them(
        client: TestClient, settings: Settings) -> None:
    store = FileBlobStore(settings.data_dir / "blobs")
    removed, present = asyncio.run(_race(settings, store))
    assert removed == []
    assert present


def test_a_removal_deletes_bytes_nothing_uses(client: TestClient, settings: Settings) -> None:
    store = FileBlobStore(settings.data_dir / "blobs")

    async def unused() -> tuple[list[str], bool]:
        engine = create_engine(settings)
        try:
            staged = await store.stage(_chunks(OTHER_PDF), max_bytes=len(OTHER_PDF))
            await store.commit(staged, new=True)
            removed = await remove_unused_blobs(engine, store, [staged.info.sha256])
            return removed, await store.exists(staged.info.sha256)
        finally:
            await engine.dispose()

    removed, present = asyncio.run(unused())
    assert removed == [hashlib.sha256(OTHER_PDF).hexdigest()]
    assert not present


def test_new_bytes_of_a_rolled_back_transaction_are_not_left_behind(
        client: TestClient, settings: Settings) -> None:
    kept = _upload(client, PDF_BYTES)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Binary"},
         "resource": {"resourceType": "Binary", "contentType": "application/pdf",
                      "data": base64.b64encode(OTHER_PDF).decode()}},
        {"request": {"method": "POST", "url": "Binary"},  # the same bytes as a live Binary
         "resource": {"resourceType": "Binary", "contentType": "application/pdf",
                      "data": base64.b64encode(PDF_BYTES).decode()}},
        {"request": {"method": "PUT", "url": "Patient/x", "ifMatch": 'W/"7"'},
         "resource": {"resourceType": "Patient", "id": "x"}}]}
    assert client.post("/fhir", json=bundle, headers=FHIR_JSON).status_code == 412
    assert [path.name for path in _blob_files(settings)] == [
        hashlib.sha256(PDF_BYTES).hexdigest()]
    assert client.get(f"/fhir/Binary/{kept}").content == PDF_BYTES


def test_a_validate_trial_leaves_no_bytes(client: TestClient, settings: Settings) -> None:
    parameters = {"resourceType": "Parameters", "parameter": [
        {"name": "mode", "valueCode": "create"},
        {"name": "resource", "resource": {
            "resourceType": "Binary", "contentType": "application/pdf",
            "data": base64.b64encode(OTHER_PDF).decode()}}]}
    response = client.post("/fhir/Binary/$validate", json=parameters, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    assert response.json()["issue"][0]["severity"] == "information"
    assert _blob_files(settings) == []
