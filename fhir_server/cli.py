"""The ``fhir-server`` command: ``serve`` and ``migrate``."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from fhir_server.settings import Settings
from storage.crypto import ensure_local_keys
from storage.migrate import upgrade_to_head

logger = logging.getLogger("fhir_server")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fhir-server", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the FHIR API at http://HOST:PORT/fhir")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    commands.add_parser("migrate", help="apply pending database migrations (Alembic upgrade head)")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if arguments.command == "migrate":
        upgrade_to_head(settings.resolved_database_url)
        print("database is at the latest migration")
        return 0
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_local_keys(settings)
    if settings.is_sqlite:
        upgrade_to_head(settings.resolved_database_url)
    logger.info("FHIR API at http://%s:%s/fhir (database: %s)", arguments.host, arguments.port,
                "SQLite" if settings.is_sqlite else "PostgreSQL")
    uvicorn.run(
        "fhir_server.app:app_from_environment",
        factory=True,
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
