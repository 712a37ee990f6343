"""The console's cookies and forms.

- ``fhir_console_token``: the access token the login page stores when authorisation is
  configured (HttpOnly, SameSite=Strict, Secure on https, path ``/console``); the security
  layer reads it for ``/console`` paths as it reads a Bearer header elsewhere.
- ``fhir_console_csrf``: a random value (same flags); every form that changes data carries
  HMAC-SHA256(server key, that value), a signed double-submit token, checked on POST. A
  cross-site page can neither read the cookie nor forge the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.errors import Forbidden, InvalidRequest
from fhir_server.http.body import read_body
from fhir_server.settings import Settings

TOKEN_COOKIE = "fhir_console_token"
CSRF_COOKIE = "fhir_console_csrf"
CSRF_FIELD = "csrf"
COOKIE_PATH = "/console"
FORM_LIMIT = 64 * 1024
MAX_TOKEN_CHARS = 16_384


def auth_configured(settings: Settings) -> bool:
    """Whether the server checks tokens (``FHIR_AUTH_*``); the console then needs a login."""
    return bool(getattr(settings, "auth_enabled", False))


def _signature(key: bytes, value: str) -> str:
    digest = hmac.new(key, b"console-csrf:" + value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class CsrfGuard:
    """The request's CSRF cookie (minted when missing) and the token its forms carry."""

    def __init__(self, request: Request, key: bytes) -> None:
        self._key = key
        existing = request.cookies.get(CSRF_COOKIE, "")
        self.minted = not (16 <= len(existing) <= 128)
        self.value = secrets.token_urlsafe(32) if self.minted else existing

    @property
    def token(self) -> str:
        return _signature(self._key, self.value)

    def check(self, sent: str | None) -> None:
        """Forbidden unless ``sent`` is this cookie's token (and the cookie was sent)."""
        if self.minted or not sent or not hmac.compare_digest(sent, self.token):
            raise Forbidden("The form's security token is missing or stale: reload the page "
                            "and send it again")

    def set_cookie(self, request: Request, response: Response) -> None:
        if self.minted:
            _set(request, response, CSRF_COOKIE, self.value)


def _set(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def store_token(request: Request, response: Response, token: str) -> None:
    _set(request, response, TOKEN_COOKIE, token)


def forget_token(request: Request, response: Response) -> None:
    response.delete_cookie(TOKEN_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def has_token(request: Request) -> bool:
    return bool(request.cookies.get(TOKEN_COOKIE))


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (first value of each field)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("The console's forms are sent as "
                             "application/x-www-form-urlencoded")
    body = await read_body(request, FORM_LIMIT)
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        raise InvalidRequest("The form body is not UTF-8") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def local_path(candidate: str | None, default: str = "/console") -> str:
    """``candidate`` when it is a path of the console (never another site), else ``default``."""
    if candidate and candidate.startswith("/console") and "//" not in candidate \
            and "\\" not in candidate:
        return candidate
    return default
