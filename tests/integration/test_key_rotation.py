"""``fhir-server rotate-keys`` on SQLite and PostgreSQL: rows written under key A are read
with keys "B,A", rotated, then read with key B alone; a row a server rewrites during the
rotation keeps the server's value."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
from cryptography.fernet import Fernet, InvalidToken
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.cli import main
from fhir_server.settings import Settings
from storage.database import create_engine as create_async_engine
from storage.key_rotation import KeyRotation
from storage.tables import patient_identifiers, patients, resource_history
from tests.conftest import empty_tables
from tests.factories import FHIR_JSON, patient

SSN = "http://hl7.org/fhir/sid/us-ssn"
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


@contextmanager
def _server(settings: Settings, keys: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"encryption_keys": keys}),
                               migrate=False)) as client:
        yield client


def _with_ssn(number: str, ssn: str) -> dict[str, object]:
    return patient(id=f"p{number}", identifier=[{"system": SSN, "value": ssn}])


def _ssn_of(body: dict[str, object]) -> str:
    identifiers = body["identifier"]
    assert isinstance(identifiers, list)
    return str(next(item["value"] for item in identifiers if item["system"] == SSN))


def _stored_tokens(engine: Engine) -> list[str]:
    """Every ciphertext the database holds: columns and history snapshots."""
    with engine.connect() as connection:
        tokens = [row[0] for row in connection.execute(
            select(patients.c.ssn_ciphertext).where(patients.c.ssn_ciphertext.is_not(None)))]
        tokens += [row[0] for row in connection.execute(
            select(patient_identifiers.c.value_ciphertext)
            .where(patient_identifiers.c.value_ciphertext.is_not(None)))]
        for (snapshot,) in connection.execute(
                select(resource_history.c.snapshot).where(
                    resource_history.c.resource_type == "Patient",
                    resource_history.c.snapshot.is_not(None))):
            data = orjson.loads(snapshot)
            tokens += [token for token in [data["main"].get("ssn_ciphertext")] if token]
            tokens += [row["value_ciphertext"] for row in data["children"]["identifiers"]
                       if row.get("value_ciphertext")]
    return tokens


def _decrypts(key: str, token: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


@pytest.fixture
def written_under_a(settings: Settings, engine: Engine) -> Settings:
    """Two patients with SSNs (one updated to a second version) written with key A alone."""
    empty_tables(engine)
    with _server(settings, KEY_A) as client:
        for number, ssn in (("1", "123-45-6789"), ("2", "987-65-4321")):
            response = client.put(f"/fhir/Patient/p{number}", json=_with_ssn(number, ssn),
                                  headers=FHIR_JSON)
            assert response.status_code == 201, response.text
        assert client.put("/fhir/Patient/p1", json=_with_ssn("1", "123-45-6780"),
                          headers=FHIR_JSON).status_code == 200
    return settings


def test_rotation_moves_every_ciphertext_to_the_new_key(
        written_under_a: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    tokens = _stored_tokens(engine)
    assert len(tokens) == 10 and all(_decrypts(KEY_A, token) for token in tokens)
    with _server(written_under_a, f"{KEY_B},{KEY_A}") as client:
        assert _ssn_of(client.get("/fhir/Patient/p1").json()) == "123-45-6780"
        assert _ssn_of(client.get("/fhir/Patient/p1/_history/1").json()) == "123-45-6789"

    monkeypatch.setenv("FHIR_DATA_DIR", str(written_under_a.data_dir))
    monkeypatch.setenv("FHIR_DATABASE_URL", str(written_under_a.database_url))
    monkeypatch.setenv("FHIR_ENCRYPTION_KEYS", f"{KEY_B},{KEY_A}")
    monkeypatch.setenv("FHIR_HASH_KEY", str(written_under_a.hash_key))
    assert main(["rotate-keys", "--batch", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].split() == ["total", "7", "7", "0", "0", "0"]
    assert [line.split()[:3] for line in lines[1:-1]] == [
        ["patients.ssn_ciphertext", "2", "2"],
        ["patient_identifiers.value_ciphertext", "2", "2"],
        ["resource_history.snapshot", "3", "3"]]

    tokens = _stored_tokens(engine)
    assert len(tokens) == 10
    assert all(_decrypts(KEY_B, token) and not _decrypts(KEY_A, token) for token in tokens)
    with _server(written_under_a, KEY_B) as client:
        assert _ssn_of(client.get("/fhir/Patient/p1").json()) == "123-45-6780"
        assert _ssn_of(client.get("/fhir/Patient/p2").json()) == "987-65-4321"
        assert _ssn_of(client.get("/fhir/Patient/p1/_history/1").json()) == "123-45-6789"
        history = client.get("/fhir/Patient/_history").json()
        assert sorted(_ssn_of(entry["resource"]) for entry in history["entry"]) == [
            "123-45-6780", "123-45-6789", "987-65-4321"]
        found = client.get(f"/fhir/Patient?identifier={SSN}|987-65-4321").json()
        assert [entry["resource"]["id"] for entry in found["entry"]] == ["p2"]

    assert main(["rotate-keys"]) == 0  # a second run finds everything current
    assert capsys.readouterr().out.splitlines()[-1].split() == [
        "total", "7", "0", "7", "0", "0"]


def test_rotation_reports_values_no_key_decrypts(
        written_under_a: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FHIR_DATA_DIR", str(written_under_a.data_dir))
    monkeypatch.setenv("FHIR_DATABASE_URL", str(written_under_a.database_url))
    monkeypatch.setenv("FHIR_ENCRYPTION_KEYS", KEY_B)
    monkeypatch.setenv("FHIR_HASH_KEY", str(written_under_a.hash_key))
    assert main(["rotate-keys"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].split() == ["total", "7", "0", "0", "0", "7"]
    assert "add the key they were written with" in captured.err


def test_rotation_keeps_a_value_a_server_rewrote_meanwhile(
        written_under_a: Settings) -> None:
    keys = f"{KEY_B},{KEY_A}"
    with _server(written_under_a, keys) as client:
        rewritten: list[str] = []

        async def rewrite_once(column: str) -> None:
            if column == "patients.ssn_ciphertext" and not rewritten:
                # the server rewrites p1 between the rotation's read and its write
                response = await asyncio.to_thread(
                    client.put, "/fhir/Patient/p1", json=_with_ssn("1", "111-22-3333"),
                    headers=FHIR_JSON)
                assert response.status_code == 200, response.text
                rewritten.append(column)

        async def rotate() -> list[tuple[str, int, int, int]]:
            engine = create_async_engine(written_under_a)
            try:
                rotation = KeyRotation(engine, [Fernet(KEY_B.encode()), Fernet(KEY_A.encode())],
                                       batch_size=10, after_read=rewrite_once)
                report = await rotation.run()
            finally:
                await engine.dispose()
            return [(t.name, t.rotated, t.current, t.changed) for t in report.targets]

        counts = asyncio.run(rotate())
    assert rewritten
    assert counts[0] == ("patients.ssn_ciphertext", 1, 0, 1)  # p1 left as the server wrote it
    assert counts[1] == ("patient_identifiers.value_ciphertext", 1, 1, 0)
    with _server(written_under_a, KEY_B) as client:
        assert _ssn_of(client.get("/fhir/Patient/p1").json()) == "111-22-3333"
        assert _ssn_of(client.get("/fhir/Patient/p1/_history/2").json()) == "123-45-6780"
        found = client.get(f"/fhir/Patient?identifier={SSN}|111-22-3333").json()
        assert [entry["resource"]["id"] for entry in found["entry"]] == ["p1"]
