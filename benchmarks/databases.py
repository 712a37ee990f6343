"""Create and drop the throw-away PostgreSQL databases a benchmark run uses."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


def database_url(base_url: str, database: str, scheme: str | None = None) -> str:
    """``base_url`` pointing at ``database``, optionally with another scheme."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(scheme=scheme or parts.scheme, path="/" + database))


def server_version(admin_url: str) -> str:
    """The PostgreSQL server version string."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"


def create_database(admin_url: str, name: str) -> None:
    """CREATE DATABASE ``name`` (connecting through ``admin_url``)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin_url: str, name: str) -> None:
    """DROP DATABASE ``name`` if it exists, disconnecting any leftover sessions."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(statement.format(sql.Identifier(name)))
