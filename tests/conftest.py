"""Shared fixtures: every API test runs on SQLite and, when ``FHIR_TEST_POSTGRES_URL`` is set,
on PostgreSQL too; each test starts from empty tables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.settings import Settings
from storage.database import sync_url
from storage.migrate import upgrade_to_head
from storage.schema import metadata

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TEST_ENCRYPTION_KEYS = (
    "kQmH3t3rC2mO9d4Nq0s4cQ3nJ6vF7l1o2Yb8aZ5xW0E=,"
    "xX2bq7m6bqL4Zq3r1w9t8y7u6i5o4p3a2s1d0f9g8h4="
)
TEST_HASH_KEY = "test-hash-key-not-for-production"
BACKENDS = ["sqlite", "postgresql"]
pytest_plugins = ["tests.s3_server", "tests.twilio_server", "tests.smtp_server", "tests.tokens"]


def pytest_report_header() -> str:
    url = os.environ.get("FHIR_TEST_POSTGRES_URL")
    return f"PostgreSQL backend: {'on, ' + url if url else 'off (FHIR_TEST_POSTGRES_URL unset)'}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Migrated databases, one per backend, shared by the session (tables emptied per test)."""
    sqlite_path = tmp_path_factory.mktemp("sqlite") / "fhir.sqlite3"
    urls = {"sqlite": f"sqlite+aiosqlite:///{sqlite_path}"}
    postgres = os.environ.get("FHIR_TEST_POSTGRES_URL")
    if postgres:
        urls["postgresql"] = postgres
    for url in urls.values():
        upgrade_to_head(url)
    return urls


@pytest.fixture(scope="session")
def sync_engines(database_urls: dict[str, str]) -> Iterator[dict[str, Engine]]:
    # SQLite: wait for a writer as the server's engines do (they set a busy timeout), not
    # pysqlite's 5 s: a test's set-up can meet the previous app still finishing a commit
    engines = {name: create_engine(sync_url(url), connect_args={"timeout": 30}
                                   if name == "sqlite" else {})
               for name, url in database_urls.items()}
    yield engines
    for engine in engines.values():
        engine.dispose()


def empty_tables(engine: Engine) -> None:
    """Every table emptied, children first. DELETE, not TRUNCATE: on PostgreSQL a TRUNCATE of
    the schema's ~30 tables took about a second per test (new files for every table), the
    DELETEs of a test's few rows under 0.1 s."""
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, database_urls: dict[str, str]) -> str:
    if request.param not in database_urls:
        pytest.skip("PostgreSQL tests need FHIR_TEST_POSTGRES_URL")
    return str(request.param)


@pytest.fixture
def settings(backend: str, database_urls: dict[str, str], tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        database_url=database_urls[backend],
        encryption_keys=TEST_ENCRYPTION_KEYS,
        hash_key=TEST_HASH_KEY,
        base_url="http://testserver/fhir",
        messaging_worker=False,
    )


@pytest.fixture
def engine(backend: str, sync_engines: dict[str, Engine]) -> Engine:
    """A synchronous engine on the test's database, for looking at the rows directly."""
    return sync_engines[backend]


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    empty_tables(engine)
    with TestClient(create_app(settings, migrate=False)) as test_client:
        yield test_client
