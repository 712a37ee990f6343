"""Migration 0016: an index on ``lower(value)`` of patient telecoms (email searches), made by
upgrade and removed by downgrade, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from storage.database import sync_url
from tests.integration.migration_databases import migrate, own_database

INDEX = "ix_patient_telecoms_value_lower"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from own_database(request.param, tmp_path, "m0016")


def test_upgrade_adds_the_lowered_value_index_downgrade_drops_it(empty_database: str) -> None:
    engine = create_engine(sync_url(empty_database))

    def indexes() -> set[str]:  # SQLAlchemy's inspector skips expression indexes on SQLite
        query = ("SELECT name FROM sqlite_master WHERE type = 'index'"
                 " AND tbl_name = 'patient_telecoms'" if engine.dialect.name == "sqlite" else
                 "SELECT indexname FROM pg_indexes WHERE tablename = 'patient_telecoms'")
        with engine.connect() as connection:
            return {str(row[0]) for row in connection.execute(text(query))}

    try:
        migrate(empty_database, "0015", engine)
        assert INDEX not in indexes()
        migrate(empty_database, "0016", engine)
        assert INDEX in indexes()
        migrate(empty_database, "0015", engine, down=True)
        assert INDEX not in indexes()
    finally:
        engine.dispose()
