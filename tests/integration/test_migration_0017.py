"""Migration 0017: lz4 compression for the AuditEvent remainder on PostgreSQL (set by upgrade,
back to the default by downgrade); SQLite only moves its version, and events read back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from storage.database import sync_url
from tests.integration.migration_databases import migrate, own_database

COMPRESSION = text("SELECT attcompression FROM pg_attribute"
                   " WHERE attrelid = 'audit_events'::regclass AND attname = 'remainder'")
EVENT = ("INSERT INTO audit_events (id, version_id, last_updated, recorded, action, outcome,"
         " remainder) VALUES (:id, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'R', '0', :text)")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from own_database(request.param, tmp_path, "m0017")


def test_upgrade_compresses_the_remainder_with_lz4_and_downgrade_restores_it(
        empty_database: str) -> None:
    engine = create_engine(sync_url(empty_database))
    long_text = '{"entity":[' + ",".join(
        f'{{"what":{{"reference":"Patient/{number:036d}"}}}}' for number in range(60)) + "]}"
    try:
        migrate(empty_database, "0016", engine)
        with engine.begin() as connection:
            connection.execute(text(EVENT), {"id": "before", "text": long_text})
        migrate(empty_database, "0017", engine)
        with engine.begin() as connection:
            connection.execute(text(EVENT), {"id": "after", "text": long_text})
            stored: dict[str, str] = dict(connection.execute(text(
                "SELECT id, remainder FROM audit_events")).tuples().all())
            if engine.dialect.name == "postgresql":
                assert connection.execute(COMPRESSION).scalar() == "l"
                methods: dict[str, str] = dict(connection.execute(text(
                    "SELECT id, pg_column_compression(remainder) FROM audit_events")).tuples().all())
                assert methods == {"before": "pglz", "after": "lz4"}
        assert stored == {"before": long_text, "after": long_text}
        migrate(empty_database, "0016", engine, down=True)
        if engine.dialect.name == "postgresql":
            with engine.connect() as connection:
                assert connection.execute(COMPRESSION).scalar() == ""
    finally:
        engine.dispose()
