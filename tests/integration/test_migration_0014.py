"""Migration 0014 back-fills what rows written before it lack: every identifier type coding,
``:of-type`` token rows, the punctuation-free haystacks and the name sort keys. Rows are written
as 0013 left them, then the database is upgraded; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from storage.database import sync_url
from tests.integration.migration_databases import migrate, own_database

OLD_ROWS = [
    ("INSERT INTO patients (id, version_id, last_updated, status, family_name, family_search,"
    " family_exact, name_search) VALUES ('p1', 1, '2024-01-01 00:00:00', 'active', 'O''Brien',"
    " '|o''brien|', '|O''Brien|', '|o''brien|seán|')"),
    ("INSERT INTO patient_names (patient_id, position, use, family, given) VALUES"
    " ('p1', 0, 'nickname', 'García-López', NULL),"
    " ('p1', 1, 'official', 'O''Brien', '[\"Seán\"]')"),
    ("INSERT INTO patient_identifiers (patient_id, position, system, value, type_system,"
    " type_code, extra) VALUES ('p1', 0, 'urn:x', 'A-1', 'urn:t', 'a',"
    " '{\"type\": {\"coding\": [{\"system\": \"urn:t\", \"code\": \"a\"},"
    " {\"system\": \"urn:t\", \"code\": \"b\"}]}}')"),
    ("INSERT INTO notification_requests (id, version_id, last_updated, status, remainder) VALUES"
    " ('r1', 1, '2024-01-01 00:00:00', 'active', '{\"identifier\": [{\"value\": \"R-1\","
    " \"type\": {\"coding\": [{\"system\": \"urn:t\", \"code\": \"c\"}]}}],"
    " \"groupIdentifier\": {\"value\": \"G-1\", \"type\": {\"coding\":"
    " [{\"system\": \"urn:t\", \"code\": \"g\"}]}}}')"),
    ("INSERT INTO notification_requests_tokens (resource_id, position, param, system, code)"
    " VALUES ('r1', 0, 'identifier', NULL, 'R-1')"),
]


def _upgraded_with_old_rows(url: str, engine: Engine) -> None:
    """The database at 0013 with OLD_ROWS in it, then upgraded to head."""
    migrate(url, "0013", engine)
    with engine.begin() as connection:
        for statement in OLD_ROWS:
            connection.execute(text(statement))
    migrate(url, "head", engine)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from own_database(request.param, tmp_path, "m0014")


def test_upgrade_back_fills_search_values_of_existing_rows(empty_database: str) -> None:
    engine = create_engine(sync_url(empty_database))
    try:
        _upgraded_with_old_rows(empty_database, engine)
        with engine.connect() as connection:
            patient = connection.execute(text(
                "SELECT family_search, family_exact, name_search, family_sort, given_sort,"
                " name_sort, phonetic_search FROM patients WHERE id = 'p1'")).one()
            types = connection.execute(text(
                "SELECT identifier_position, system, code FROM patient_identifier_types"
                " ORDER BY position")).all()
            tokens = connection.execute(text(
                "SELECT position, param, system, code FROM notification_requests_tokens"
                " ORDER BY position")).all()
    finally:
        engine.dispose()
    assert tuple(patient) == (  # exact haystacks are left as they were
        "|garcia |lopez|obrien|", "|O'Brien|", "|garcia |lopez|obrien|sean|",
        "obrien", "sean", "obrien sean", "|krx|lps|obrn|sn|")
    assert [tuple(row) for row in types] == [(0, "urn:t", "a"), (0, "urn:t", "b")]
    assert [tuple(row) for row in tokens] == [
        (0, "identifier", None, "R-1"),
        (1, "identifier:of-type", "urn:t|c", "R-1"),
        (2, "group-identifier:of-type", "urn:t|g", "G-1")]


def test_downgrade_takes_the_new_rows_away_and_upgrade_brings_them_back(
        empty_database: str) -> None:
    engine = create_engine(sync_url(empty_database))
    typed = text("SELECT count(*) FROM notification_requests_tokens WHERE param LIKE :typed"
                 ).bindparams(typed="%:of-type")
    try:
        _upgraded_with_old_rows(empty_database, engine)
        migrate(empty_database, "0013", engine, down=True)
        with engine.connect() as connection:
            assert connection.execute(typed).scalar_one() == 0
        migrate(empty_database, "head", engine)
        with engine.connect() as connection:
            assert connection.execute(typed).scalar_one() == 2
            assert connection.execute(text(
                "SELECT family_sort FROM patients WHERE id = 'p1'")).scalar_one() == "obrien"
    finally:
        engine.dispose()
