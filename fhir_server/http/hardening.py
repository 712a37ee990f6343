"""The protective layers of issue 9 (point 5), installed on an app in one call: request limits
(body size on every route, JSON depth, the client of the send rate limit), CORS when
``FHIR_CORS_ORIGINS`` is set, security headers on every answer, and statement timeouts
answered as 503, and library loggers that would write SQL parameters capped. Called after the app's own error handlers and inner middleware, so these
layers sit outside them (only the access log is further out)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Scope

from fhir_server.http.database_errors import on_database_error
from fhir_server.http.request_limits import RequestLimitsMiddleware, client_address
from fhir_server.http.security_headers import SecurityHeadersMiddleware, with_security_headers
from fhir_server.log_hygiene import keep_phi_out_of_logs
from fhir_server.settings import Settings

CORS_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", "Accept", "If-Match", "If-None-Match",
                        "If-None-Exist", "If-Modified-Since", "If-Range", "Prefer", "Range",
                        "X-Request-Id", "X-Security-Context")
CORS_EXPOSED_HEADERS = ("ETag", "Location", "Content-Location", "Last-Modified",
                        "X-Request-Id", "Retry-After", "X-Progress")


def install_hardening(app: FastAPI, settings: Settings, *,
                      client_key: Callable[[Scope], str] = client_address) -> None:
    """Adds the layers to ``app``; ``client_key`` names the client a bulk send is charged to."""
    keep_phi_out_of_logs()
    app.add_middleware(RequestLimitsMiddleware, settings=settings, client_key=client_key)
    origins = settings.cors_origin_list
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=CORS_METHODS,
                           allow_headers=CORS_REQUEST_HEADERS,
                           expose_headers=CORS_EXPOSED_HEADERS, max_age=600)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.hsts)
    unexpected = app.exception_handlers.get(Exception)
    if unexpected is not None:
        app.add_exception_handler(Exception, with_security_headers(unexpected,
                                                                   hsts=settings.hsts))
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(psycopg.Error, on_database_error)
