"""For migration tests: a database of its own per backend, and migrating it up or down."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from storage.database import sync_url
from storage.migrate import alembic_config


def migrate(url: str, revision: str, engine: Engine, *, down: bool = False) -> None:
    config = alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def own_database(backend: str, tmp_path: Path, suffix: str) -> Iterator[str]:
    """The URL of a new ``backend`` database (``sqlite`` or ``postgresql``), dropped after."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
        return
    shared = os.environ.get("FHIR_TEST_POSTGRES_URL")
    if not shared:
        pytest.skip("PostgreSQL tests need FHIR_TEST_POSTGRES_URL")
    url = make_url(shared)
    name = f"{url.database}_{suffix}"
    admin = create_engine(sync_url(shared), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
