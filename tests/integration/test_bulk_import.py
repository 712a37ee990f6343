"""``fhir-server import``: Bundles and NDJSON loaded through the server's transactions, the
types not served counted, resumable from its state file. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from fhir_server.bulk_import import ImportReport, import_path, source_files
from fhir_server.settings import Settings
from storage.blobs import BlobStore, blob_store_from_url
from storage.media_tables import blobs
from storage.tables import patients
from tests.conftest import empty_tables


def patient_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(patients)).scalar_one())


@pytest.fixture
def source(shared_data: Path, tmp_path: Path) -> Path:
    """Two NDJSON files (13 Patients, 1,215 Encounters) and the smallest Synthea Bundle."""
    folder = tmp_path / "source"
    (folder / "ndjson").mkdir(parents=True)
    for name in ("Patient.000.ndjson", "Encounter.000.ndjson"):
        shutil.copy(shared_data / "synthea" / "ndjson" / name, folder / "ndjson" / name)
    smallest = min((shared_data / "synthea" / "bundles").glob("*.json"),
                   key=lambda path: path.stat().st_size)
    bundle = json.loads(smallest.read_text())
    for entry in bundle["entry"]:  # text/plain notes are not an allowed media type
        for content in entry["resource"].get("content", []):
            content["attachment"].pop("data", None)
    (folder / "bundle.json").write_text(json.dumps(bundle))
    return folder


def run(settings: Settings, path: Path, *, state_path: Path | None = None,
        chunk: int = 500) -> ImportReport:
    return asyncio.run(import_path(settings, path, state_path=state_path, chunk=chunk,
                                   stream=io.StringIO()))


def test_import_loads_served_types_and_counts_the_rest(settings: Settings, engine: Engine,
                                                      source: Path) -> None:
    empty_tables(engine)
    report = run(settings, source)
    assert report.loaded["Patient"] == 14
    assert report.loaded["DocumentReference"] == 15
    assert report.skipped["Encounter"] == 1215 + 15
    assert not report.failed
    assert patient_count(engine) == 14
    table = report.table()
    assert "Encounter" in table and "total" in table


def test_a_second_run_skips_what_the_first_finished(settings: Settings, engine: Engine,
                                                    source: Path) -> None:
    empty_tables(engine)
    run(settings, source)
    again = run(settings, source)
    assert again.resumed == 3 and not again.loaded
    assert patient_count(engine) == 14


def test_an_interrupted_ndjson_file_resumes_after_its_last_chunk(
        settings: Settings, engine: Engine, source: Path, tmp_path: Path) -> None:
    empty_tables(engine)
    patients_file = source / "ndjson" / "Patient.000.ndjson"
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"done": [], "lines": {str(patients_file.resolve()): 10}}))
    report = run(settings, patients_file, state_path=state, chunk=4)
    assert report.loaded["Patient"] == 3
    assert json.loads(state.read_text())["done"] == [str(patients_file.resolve())]


def test_a_bundle_sent_again_by_a_fresh_run_creates_nothing_new(
        settings: Settings, engine: Engine, source: Path, tmp_path: Path) -> None:
    empty_tables(engine)
    run(settings, source / "bundle.json", state_path=tmp_path / "one.json")
    before = patient_count(engine)
    report = run(settings, source / "bundle.json", state_path=tmp_path / "two.json")
    assert report.loaded["Patient"] == 1
    assert patient_count(engine) == before == 1


def test_synthea_notes_load_whole_once_text_plain_is_allowed(
        settings: Settings, engine: Engine, shared_data: Path) -> None:
    """An operator who allows text/plain gets every Synthea clinical note, bytes intact."""
    empty_tables(engine)
    smallest = min((shared_data / "synthea" / "bundles").glob("*.json"),
                   key=lambda path: path.stat().st_size)
    notes = [base64.b64decode(content["attachment"]["data"])
             for entry in json.loads(smallest.read_text())["entry"]
             for content in entry["resource"].get("content", [])
             if "data" in content["attachment"]]
    allowing = settings.model_copy(update={
        "allowed_media_types": settings.allowed_media_types + ",text/plain"})
    report = run(allowing, smallest)
    assert report.loaded["DocumentReference"] == len(notes) > 0
    assert not report.failed
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(blobs)).scalar_one()
    assert stored == len(set(notes))
    assert _stored_bytes(allowing, engine) == set(notes)


def _stored_bytes(settings: Settings, engine: Engine) -> set[bytes]:
    with engine.connect() as connection:
        keys = [row[0] for row in connection.execute(select(blobs.c.sha256))]
    store = blob_store_from_url(settings.blob_url, data_dir=settings.data_dir)
    return {asyncio.run(_read_all(store, key)) for key in keys}


async def _read_all(store: BlobStore, key: str) -> bytes:
    try:
        return b"".join([chunk async for chunk in store.open(key)])
    finally:
        await store.close()


def test_source_files_of_a_folder(source: Path) -> None:
    assert [path.name for path in source_files(source)] == [
        "bundle.json", "Encounter.000.ndjson", "Patient.000.ndjson"]
