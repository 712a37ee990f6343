"""Migration 0015: the ``patient`` copies of AuditEvent entity rows go (``patient`` is served
by the Patient ``entity``/``agent`` rows), and the audit child rows lose their foreign key;
downgrade brings both back. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.database import sync_url
from tests.integration.migration_databases import migrate, own_database

EVENT = ("INSERT INTO audit_events (id, version_id, last_updated, recorded, action, outcome,"
         " remainder) VALUES ('e1', 1, '2024-01-01 00:00:00', '2024-01-01 00:00:00', 'R', '0',"
         " '{}')")
ROWS_0014 = ("INSERT INTO audit_events_references (resource_id, position, param, target_type,"
             " target_id, url) VALUES"
             " ('e1', 0, 'entity', 'Patient', 'p1', 'Patient/p1'),"
             " ('e1', 1, 'entity', 'Binary', 'b1', 'Binary/b1'),"
             " ('e1', 2, 'patient', 'Patient', 'p1', 'Patient/p1')")
ORPHAN = ("INSERT INTO audit_events_tokens (resource_id, position, param, code)"
          " VALUES ('no-such-event', 0, 'type', 'rest')")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from own_database(request.param, tmp_path, "m0015")


def _references(connection: Connection) -> list[tuple[str, str | None, str | None]]:
    return [tuple(row) for row in connection.execute(text(
        "SELECT param, target_type, target_id FROM audit_events_references"
        " ORDER BY position"))]


def _orphan_accepted(connection: Connection) -> bool:
    try:
        with connection.begin_nested():
            connection.execute(text(ORPHAN))
            raise _RolledBack()
    except IntegrityError:
        return False
    except _RolledBack:
        return True


class _RolledBack(Exception):
    """Undo a trial insert that succeeded."""


def test_upgrade_drops_patient_copies_and_keys_downgrade_restores(empty_database: str) -> None:
    engine = create_engine(sync_url(empty_database))
    if engine.dialect.name == "sqlite":  # as the server's engine does (storage.database)
        event.listen(engine, "connect",
                     lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys=ON"))
    try:
        migrate(empty_database, "0014", engine)
        with engine.begin() as connection:
            connection.execute(text(EVENT))
            connection.execute(text(ROWS_0014))
        migrate(empty_database, "0015", engine)
        with engine.begin() as connection:
            assert _references(connection) == [("entity", "Patient", "p1"),
                                                ("entity", "Binary", "b1")]
            assert _orphan_accepted(connection)
        migrate(empty_database, "0014", engine, down=True)
        with engine.begin() as connection:
            assert _references(connection) == [("entity", "Patient", "p1"),
                                                ("entity", "Binary", "b1"),
                                                ("patient", "Patient", "p1")]
            assert not _orphan_accepted(connection)
    finally:
        engine.dispose()
