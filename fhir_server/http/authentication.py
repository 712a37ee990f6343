"""Bearer-token authentication in front of every protected path: a request without a valid
token gets 401 before any handler runs (deny by default: only the paths listed here are
public). The console sends its token in the ``fhir_console_token`` cookie instead."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fhir_server.errors import FhirError
from fhir_server.http.request_limits import client_address
from fhir_server.http.responses import error_response

PUBLIC_PATHS = frozenset({"/fhir/metadata", "/fhir/.well-known/smart-configuration",
                          "/fhir/openapi.json", "/fhir/docs",
                          "/console/login", "/console/logout", "/metrics"})
PUBLIC_PREFIXES = ("/health", "/messaging/twilio/", "/download/", "/console/static/",
                   "/fhir/docs/static/")
"""Health checks, Twilio's signed callbacks, signed download links, the console's login page
and assets, the API description and its docs page: each carries its own proof or no PHI."""
CONSOLE_COOKIE = "fhir_console_token"


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        verifier = scope["app"].state.services.verifier
        if verifier is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        authorization = headers.get("authorization")
        if authorization is None and scope["path"].startswith("/console"):
            token = cookie_parser(headers.get("cookie", "")).get(CONSOLE_COOKIE)
            authorization = f"Bearer {token}" if token else None
        try:
            principal = await verifier.principal(authorization)
        except FhirError as error:
            if scope["path"].startswith("/console") and error.status == 401:
                await console_login(scope, had_token=authorization is not None)(
                    scope, receive, send)
                return
            await error_response(error)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def console_login(scope: Scope, *, had_token: bool) -> Response:
    """A console page without a valid token: to the login page (a person, not an API
    client), the stale cookie removed."""
    wanted = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}"
                              if scope.get("query_string") else "")
    target = "/console/login?" + urlencode({"next": wanted} | ({"expired": "1"}
                                                               if had_token else {}))
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(CONSOLE_COOKIE, path="/console", httponly=True, samesite="strict")
    return response


def rate_limit_key(scope: Scope) -> str:
    """Whom a bulk send is charged to: the token's client (or subject), else the address."""
    principal = scope.get("state", {}).get("principal")
    client_id = getattr(principal, "client_id", None)
    subject = getattr(principal, "subject", None)
    if client_id:
        return f"client:{client_id}"
    if subject:
        return f"subject:{subject}"
    return client_address(scope)
