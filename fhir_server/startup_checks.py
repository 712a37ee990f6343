"""Start-up checks for ``fhir-server serve`` and ``worker``: an invalid configuration stops the
command with one message per problem, each naming the setting (the environment variable) that
causes it, instead of a traceback or a server that fails on its first request. Checked: every
value parses (pydantic), the log level is known, the database answers, ``FHIR_BLOB_URL`` is a
usable store and an S3 bucket exists."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import create_engine, text

from fhir_server.settings import Settings
from storage.blobs import blob_store_from_url
from storage.blobs.s3 import S3BlobStore
from storage.database import sync_url

CONNECT_TIMEOUT_SECONDS = 5


class ConfigurationError(Exception):
    """The configuration cannot work; ``problems`` name the settings."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_settings() -> Settings:
    """``Settings()`` from the environment; ConfigurationError naming each bad variable."""
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigurationError([f"{_variable(item['loc'])}: {item['msg']}"
                                  for item in error.errors()]) from None


def _variable(location: tuple[Any, ...]) -> str:
    name = str(location[0]) if location else "?"
    field = Settings.model_fields.get(name)
    alias = field.validation_alias if field is not None else None
    if isinstance(alias, str):
        return alias
    return name if name.isupper() else f"FHIR_{name.upper()}"


def check_environment(settings: Settings) -> None:
    """ConfigurationError when the database or the blob store cannot be used."""
    problems = _database_problems(settings) + _blob_store_problems(settings)
    if problems:
        raise ConfigurationError(problems)


def _database_problems(settings: Settings) -> list[str]:
    if settings.is_sqlite:
        return []  # the file is created and migrated at start
    url = sync_url(settings.resolved_database_url)
    engine = create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect stops the start alike
        where = url.render_as_string(hide_password=True)
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return [f"FHIR_DATABASE_URL: cannot connect to {where}: {reason}"]
    finally:
        engine.dispose()
    return []


def _blob_store_problems(settings: Settings) -> list[str]:
    try:
        store = blob_store_from_url(settings.blob_url, data_dir=settings.data_dir)
    except ValueError as exc:
        return [str(exc)]  # the message names FHIR_BLOB_URL
    if not isinstance(store, S3BlobStore):
        return []
    try:
        store.client.head_bucket(Bucket=store.bucket)
    except Exception as exc:  # noqa: BLE001 - missing bucket, credentials or endpoint alike
        reason = str(exc)[:300]
        return [f"FHIR_BLOB_URL: the S3 bucket '{store.bucket}' cannot be used: {reason}"]
    finally:
        store.client.close()
    return []
