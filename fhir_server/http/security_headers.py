"""Security headers on every response, as a plain ASGI layer (a header the route already set
wins, so the console keeps its own policy):

- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``;
- ``X-Frame-Options: DENY`` and ``Content-Security-Policy: default-src 'none';
  frame-ancestors 'none'`` (API answers are data: nothing in them may run or be framed);
- ``Cache-Control: no-store`` except on what holds no PHI (``/fhir/metadata``, the SMART
  configuration, health checks, metrics, the console's static files);
- ``Strict-Transport-Security`` when ``FHIR_HSTS`` is on.

:func:`with_security_headers` gives the same headers to the app's unexpected-error (500)
answers, which Starlette sends outside every middleware."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = b"max-age=63072000; includeSubDomains"
API_POLICY = b"default-src 'none'; frame-ancestors 'none'"
CACHEABLE_PATHS = frozenset({"/fhir/metadata", "/fhir/.well-known/smart-configuration",
                             "/fhir/openapi.json",
                             "/metrics"})
CACHEABLE_PREFIXES = ("/health", "/console/static/")

ErrorHandler = Callable[[Request, Any], Response | Awaitable[Response]]


def security_headers(path: str, *, hsts: bool) -> list[tuple[bytes, bytes]]:
    """The headers a response to ``path`` gets (lower-case names)."""
    headers = [(b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer"),
               (b"x-frame-options", b"DENY"),
               (b"content-security-policy", API_POLICY)]
    if path not in CACHEABLE_PATHS and not path.startswith(CACHEABLE_PREFIXES):
        headers.append((b"cache-control", b"no-store"))
    if hsts:
        headers.append((b"strict-transport-security", HSTS))
    return headers


def _merged(existing: list[tuple[bytes, bytes]],
            added: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    present = {key.lower() for key, _ in existing}
    return [*existing, *((key, value) for key, value in added if key not in present)]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self._app = app
        self._hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        added = security_headers(scope.get("path", ""), hsts=self._hsts)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message,
                           "headers": _merged(list(message.get("headers", ())), added)}
            await send(message)

        await self._app(scope, receive, send_with_headers)


def with_security_headers(handler: ErrorHandler, *, hsts: bool
                          ) -> Callable[[Request, Exception], Awaitable[Response]]:
    """``handler`` whose responses carry the security headers too."""

    async def handle(request: Request, error: Exception) -> Response:
        answer = handler(request, error)
        response = await answer if inspect.isawaitable(answer) else answer
        for key, value in security_headers(request.url.path, hsts=hsts):
            name = key.decode("latin-1")
            if name not in response.headers:
                response.headers[name] = value.decode("latin-1")
        return response

    return handle
