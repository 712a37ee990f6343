"""The ``fhir-server`` command: ``serve``, ``migrate``, ``worker``, ``import``, ``match scan``,
``match train`` and ``rotate-keys``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import uvicorn

from fhir_server.security import exposure
from fhir_server.settings import Settings
from fhir_server.startup_checks import ConfigurationError, check_environment, load_settings
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
    serve.add_argument("--allow-unauthenticated", action="store_true",
                       help="listen beyond loopback even without FHIR_AUTH_* (something in "
                            "front must authenticate)")
    commands.add_parser("migrate", help="apply pending database migrations (Alembic upgrade head)")
    worker = commands.add_parser("worker", help="send due messages (CommunicationRequests) "
                                 "without serving the API")
    worker.add_argument("--once", action="store_true",
                        help="drain what is due now, print a summary and exit")
    match = commands.add_parser("match", help="Patient matching over the whole database")
    actions = match.add_subparsers(dest="action", required=True)
    scan = actions.add_parser("scan", help="list likely duplicate pairs (CSV), best first")
    scan.add_argument("--output", type=Path, default=None, help="CSV file (default: stdout)")
    scan.add_argument("--min-grade", choices=("certain", "probable", "possible"),
                      default="probable")
    train = actions.add_parser("train", help="re-estimate the matching weights (EM) and write "
                               "them as JSON for FHIR_MATCH_WEIGHTS")
    train.add_argument("--sample", type=int, default=20_000, help="patients to sample")
    train.add_argument("--output", type=Path, required=True, help="weights JSON to write")
    bulk = commands.add_parser("import", help="load Bundles / NDJSON (a file or a folder): "
                               "served types loaded, the rest counted; resumable")
    bulk.add_argument("path", type=Path)
    bulk.add_argument("--state", type=Path, default=None,
                      help="progress file (default DATA_DIR/import-state.json)")
    bulk.add_argument("--chunk", type=int, default=500, help="NDJSON lines per transaction")
    rotate = commands.add_parser("rotate-keys", help="re-encrypt every stored ciphertext under "
                                 "the first key of FHIR_ENCRYPTION_KEYS; resumable")
    rotate.add_argument("--batch", type=int, default=500, help="rows per transaction")
    return parser


def _rotate_command(arguments: argparse.Namespace, settings: Settings) -> int:
    from storage.key_rotation import rotate_keys

    ensure_local_keys(settings)
    if settings.is_sqlite:
        upgrade_to_head(settings.resolved_database_url)
    report = asyncio.run(rotate_keys(settings, batch_size=max(arguments.batch, 1)))
    print(report.table())
    if report.unreadable:
        print(f"{report.unreadable:,} values no key of FHIR_ENCRYPTION_KEYS decrypts: "
              "add the key they were written with and run again", file=sys.stderr)
        return 1
    return 0


def _import_command(arguments: argparse.Namespace, settings: Settings) -> int:
    from fhir_server.bulk_import import import_path

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_local_keys(settings)
    report = asyncio.run(import_path(settings, arguments.path, state_path=arguments.state,
                                     chunk=arguments.chunk))
    print(report.table())
    print(f"{report.files} files read, {report.resumed} done by an earlier run")
    for problem, times in report.errors.most_common(20):
        print(f"  {times:>6,} x {problem}")
    return 1 if report.failed else 0


async def _match_command(arguments: argparse.Namespace, settings: Settings) -> int:
    from fhir_server.operations.match_scan import open_matching, scan, train, write_pairs

    async with open_matching(settings) as matching:
        if arguments.action == "scan":
            pairs = await scan(matching.engine, matching.patients, matching.matcher,
                               minimum=arguments.min_grade)
            write_pairs(pairs, arguments.output)
            print(f"{len(pairs):,} pairs graded {arguments.min_grade} or better",
                  file=sys.stderr)
            return 0
        weights, used = await train(matching.engine, matching.patients, matching.matcher,
                                    sample=arguments.sample)
    arguments.output.write_bytes(weights.to_json())
    print(f"weights estimated from {used:,} candidate pairs written to {arguments.output};"
          f" set FHIR_MATCH_WEIGHTS={arguments.output} to use them", file=sys.stderr)
    return 0


def _worker_command(arguments: argparse.Namespace, settings: Settings) -> int:
    from fhir_server.messaging.worker import run_worker

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_local_keys(settings)
    if settings.is_sqlite:
        upgrade_to_head(settings.resolved_database_url)
    report = asyncio.run(run_worker(settings, once=arguments.once))
    if report is not None:
        states = ", ".join(f"{state} {count}" for state, count in sorted(report.states.items()))
        print(f"requests fanned out {report.requests}, messages queued {report.queued}, "
              f"not sendable {report.not_sendable}; outcomes: {states or 'none'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if arguments.command in ("serve", "worker"):
            check_environment(settings)
    except ConfigurationError as error:
        print("fhir-server: invalid configuration:", *error.problems, sep="\n  ",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if arguments.command == "migrate":
        upgrade_to_head(settings.resolved_database_url)
        print("database is at the latest migration")
        return 0
    if arguments.command == "worker":
        return _worker_command(arguments, settings)
    if arguments.command == "import":
        return _import_command(arguments, settings)
    if arguments.command == "rotate-keys":
        return _rotate_command(arguments, settings)
    if arguments.command == "match":
        ensure_local_keys(settings)
        if settings.is_sqlite:
            upgrade_to_head(settings.resolved_database_url)
        return asyncio.run(_match_command(arguments, settings))
    refused = exposure.refusal(settings, arguments.host,
                               allowed=arguments.allow_unauthenticated)
    if refused:
        print(f"fhir-server: {refused}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_local_keys(settings)
    if settings.is_sqlite:
        upgrade_to_head(settings.resolved_database_url)
    if (warned := exposure.warning(settings, arguments.host)) is not None:
        logger.warning("%s\n%s\n%s", "!" * 78, warned, "!" * 78)
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
