"""The app factory: ``create_app(settings)`` builds a FastAPI app with its own engine, so each
test (and each worker process) gets its own; no module-level app or engine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.bulk_export.service import build_exports
from fhir_server.capability import load_capability_statement
from fhir_server.console.routes import console_routes
from fhir_server.draining import Draining
from fhir_server.errors import FhirError, InvalidRequest, MethodNotAllowed, NotFound
from fhir_server.gc_tuning import tune_garbage_collector
from fhir_server.http.authentication import AuthenticationMiddleware, rate_limit_key
from fhir_server.http.bundle_routes import bundle_routes
from fhir_server.http.compartment_routes import compartment_routes
from fhir_server.http.docs_routes import docs_routes
from fhir_server.http.everything_routes import everything_routes
from fhir_server.http.export_routes import export_routes
from fhir_server.http.hardening import install_hardening
from fhir_server.http.health import health_routes
from fhir_server.http.media_routes import media_routes
from fhir_server.http.messaging_routes import messaging_routes
from fhir_server.http.metrics import ServerMetrics, metrics_routes, scrape, watch_pools
from fhir_server.http.metrics_port import serve_metrics
from fhir_server.http.openapi import openapi_routes
from fhir_server.http.operation_routes import operation_routes
from fhir_server.http.pretty_json import PrettyJsonMiddleware
from fhir_server.http.request_log import RequestLogMiddleware, configure_access_log
from fhir_server.http.responses import error_response
from fhir_server.http.route_index import index_routes
from fhir_server.http.routes import fhir_routes
from fhir_server.http.smart_routes import smart_routes
from fhir_server.http.system_search_routes import system_search_routes
from fhir_server.http.template_routes import template_routes
from fhir_server.http.terminology_routes import terminology_routes
from fhir_server.http.unexpected_errors import UnexpectedErrorMiddleware
from fhir_server.http.validate_routes import validate_routes
from fhir_server.http.xml_format import FhirXmlMiddleware
from fhir_server.insurance import coverage_repository
from fhir_server.media.setup import media_repositories
from fhir_server.media.store_failures import unavailable
from fhir_server.messaging.channels.registry import channels_from_settings
from fhir_server.messaging.setup import build_dispatcher, messaging_repositories, request_check
from fhir_server.operations.match import PatientMatcher, load_weights
from fhir_server.operations.merge import MergeService
from fhir_server.operations.merge_participants import participants
from fhir_server.operations.merge_provenance import ProvenanceRepository
from fhir_server.security.smart import rest_security
from fhir_server.security.tokens import token_verifier
from fhir_server.services import Services
from fhir_server.settings import Settings
from mappings.patient import MappingContext, format_instant
from storage.audit_store import AuditEventRepository, AuditTrail
from storage.blobs import BlobStoreUnavailable, blob_store_from_url
from storage.crypto import load_cipher
from storage.database import create_engine, open_patient_rows
from storage.migrate import upgrade_to_head
from storage.patient_repository import PatientRepository
from storage.patient_rows_pg import PsycopgPatientRows
from storage.pooled_reads import read_on_pool
from storage.search_pages import SearchCatalog
from storage.stored import now
from storage.template_store import TemplateStore

logger = logging.getLogger("fhir_server")


def create_app(settings: Settings | None = None, *, migrate: bool | None = None) -> FastAPI:
    """A new app; ``migrate`` (default: on for SQLite) applies pending migrations at start."""
    settings = settings or Settings()
    apply_migrations = settings.is_sqlite if migrate is None else migrate
    metrics = ServerMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if apply_migrations:
            upgrade_to_head(settings.resolved_database_url)
        engine = create_engine(settings)
        rows = await open_patient_rows(settings, engine)
        if isinstance(rows, PsycopgPatientRows):
            read_on_pool(engine, rows.pool)
        watch_pools(metrics, engine, rows)
        context = MappingContext(
            cipher=load_cipher(settings),
            phone_region=settings.phone_default_region,
            mrn_system=settings.mrn_system,
        )
        catalog = SearchCatalog(include_limit=settings.include_max)
        patients = PatientRepository(engine, rows, context, catalog)
        blob_store = blob_store_from_url(settings.blob_url, data_dir=settings.data_dir)
        templates = TemplateStore(engine)
        audit_trail = AuditTrail(engine, pool=rows.pool if isinstance(
            rows, PsycopgPatientRows) else None) if settings.audit else None
        dispatcher = build_dispatcher(settings, engine, templates=templates,
                                      patients=patients.resources,
                                      channels=channels_from_settings(settings), clock=now)
        app.state.services = Services(
            settings=settings,
            engine=engine,
            patients=patients,
            capability_statement=load_capability_statement(
                base_url=settings.base_url or "", started_at=format_instant(now()),
                security=rest_security(settings)),
            matcher=PatientMatcher(engine, patients, context, load_weights(settings),
                                   candidate_limit=settings.match_candidate_limit,
                                   on_match=metrics.observe_match),
            merger=MergeService(engine, patients, participants(context), settings.mrn_system,
                                context.cipher.search_hash),
            repositories={
                **media_repositories(engine, catalog, context, blob_store, settings,
                                     patients.merged_into),
                **messaging_repositories(
                    engine, catalog, context, patients.merged_into,
                    check=request_check(settings, templates, patients.resources),
                    wake=dispatcher.wake.set),
                "Coverage": coverage_repository(engine, catalog, context, patients.merged_into),
                "Provenance": ProvenanceRepository(engine),
                "AuditEvent": AuditEventRepository(engine, catalog, cipher=context.cipher,
                                                   phone_region=settings.phone_default_region)},
            link_key=context.cipher.hash_key,
            templates=templates,
            dispatcher=dispatcher,
            verifier=token_verifier(settings),
            audit_trail=audit_trail,
        )
        metrics_server = (await serve_metrics(
            scrape(metrics, engine), host=settings.metrics_host, port=settings.metrics_port,
            content_type=CONTENT_TYPE_PLAIN_0_0_4) if settings.metrics_port else None)
        services = app.state.services
        services.exports = build_exports(settings, engine=engine, catalog=catalog,
                                         repositories=services.repositories, store=blob_store,
                                         fernet=context.cipher.fernet)
        stop_exports = asyncio.Event()
        exporting = asyncio.create_task(services.exports.runner.run_forever(stop_exports))
        undo_drain = app.state.draining.install()
        tune_garbage_collector()
        stop_dispatch = asyncio.Event()
        dispatch = (asyncio.create_task(dispatcher.run_forever(stop_dispatch))
                    if settings.messaging_worker else None)
        try:
            yield
        finally:
            undo_drain()
            stop_dispatch.set()
            if dispatch is not None:
                await dispatch
            stop_exports.set()
            await exporting
            if metrics_server is not None:
                metrics_server.close()
                await metrics_server.wait_closed()
            if audit_trail is not None:
                await audit_trail.close()
            await blob_store.close()
            await rows.close()
            await engine.dispose()

    app = FastAPI(
        title="FHIR R4 PRM facade",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.metrics = metrics
    app.state.draining = Draining(settings.drain_seconds)
    app.router.routes.extend(smart_routes())
    app.router.routes.extend(docs_routes())
    app.router.routes.extend(operation_routes())
    app.router.routes.extend(validate_routes())
    app.router.routes.extend(everything_routes())
    app.router.routes.extend(export_routes())  # before /fhir/{resource_type}
    app.router.routes.extend(media_routes())
    app.router.routes.extend(template_routes())
    app.router.routes.extend(messaging_routes())
    app.router.routes.extend(terminology_routes())  # before /fhir/{resource_type}
    app.router.routes.extend(openapi_routes())  # before /fhir/{resource_type}
    app.router.routes.extend(system_search_routes())  # before /fhir/{resource_type}
    app.router.routes.extend(fhir_routes())
    app.router.routes.extend(compartment_routes())
    app.router.routes.extend(bundle_routes())
    app.router.routes.extend(health_routes())
    app.router.routes.extend(metrics_routes())
    app.router.routes.extend(console_routes())
    _install_error_handlers(app)
    index_routes(app.router)
    app.add_middleware(UnexpectedErrorMiddleware)  # innermost: its 500 gets every header
    app.add_middleware(AuthenticationMiddleware)
    app.add_middleware(PrettyJsonMiddleware)
    app.add_middleware(FhirXmlMiddleware, max_body_bytes=settings.max_body_bytes)
    install_hardening(app, settings, client_key=rate_limit_key)  # limits, CORS, headers, timeouts
    app.add_middleware(RequestLogMiddleware, is_served=lambda name: name in getattr(
        getattr(app.state, "services", None), "repositories", ()),
        observers=[metrics.observe_request])  # outermost: sees every response
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FhirError)
    async def on_fhir_error(_request: Request, error: FhirError) -> Response:
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 405:
            return error_response(MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path[:200]}",
                headers=dict(error.headers or {})))
        if error.status_code == 404:
            return error_response(NotFound(f"No FHIR endpoint at {request.url.path[:200]}"))
        return error_response(InvalidRequest(str(error.detail)))

    @app.exception_handler(BlobStoreUnavailable)
    async def on_blob_store_failure(request: Request, error: BlobStoreUnavailable) -> Response:
        logger.warning("the blob store failed on %s %s: %s", request.method,
                       request.url.path[:200], error)
        return error_response(unavailable(error))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_request: Request, error: RequestValidationError) -> Response:
        return error_response(InvalidRequest(f"Invalid request: {error.errors()[:3]}"))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, error: Exception) -> Response:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(FhirError("The server failed to process the request; "
                                        "the failure is logged"))


def app_from_environment() -> FastAPI:
    """Factory for uvicorn workers: settings from the environment, migrations done by the CLI."""
    settings = Settings()
    configure_access_log(settings.log_level)
    return create_app(settings, migrate=False)
