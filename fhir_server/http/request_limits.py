"""Limits one request carries through the app, set as a plain ASGI layer in front of every
route:

- its body size, whatever route it reaches and however it is sent (a ``Content-Length`` over
  the limit is refused before anything is read; a chunked body is counted as it arrives and
  refused with 413 as soon as it passes the limit). The routes keep their own, equal checks
  with precise messages; this layer is the net under routes that read a body another way.
  The limit is ``FHIR_BUNDLE_MAX_BYTES`` for ``POST /fhir`` (Bundles), the JSON form of
  ``FHIR_MAX_UPLOAD_BYTES`` for Binary and DocumentReference, ``FHIR_MAX_BODY_BYTES`` otherwise;
- the JSON nesting limit (``FHIR_MAX_JSON_DEPTH``) every JSON parser of the request reads;
- who the client is, for the send rate limit: ``client_key(scope)``, computed when a send is
  charged (after authentication has put its principal into ``scope["state"]``);
- a URL whose path or query does not percent-decode to UTF-8, or holds a control character
  (NUL and the like, which no id, name or search value may contain and PostgreSQL text
  cannot store), is refused with 400 before any route sees it."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_server.errors import InvalidRequest, PayloadTooLarge
from fhir_server.http.responses import error_response
from fhir_server.messaging.send_throttle import serve_client
from fhir_server.settings import Settings
from fhir_server.validation.json_depth import use_max_depth

UPLOAD_PREFIXES = ("/fhir/Binary", "/fhir/DocumentReference")
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def client_address(scope: Scope) -> str:
    """The peer's address (behind a proxy, uvicorn's ``proxy_headers`` puts the client's)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def body_limit(scope: Scope, settings: Settings) -> tuple[int, str]:
    """(bytes, setting name) of the largest body this request may send."""
    path = scope.get("path", "")
    if scope.get("method") == "POST" and path in ("/fhir", "/fhir/"):
        return settings.bundle_max_bytes, "FHIR_BUNDLE_MAX_BYTES"
    if path.startswith(UPLOAD_PREFIXES):
        upload_json = settings.max_upload_bytes * 4 // 3 + 64 * 1024  # base64 in JSON
        if upload_json > settings.max_body_bytes:
            return upload_json, "FHIR_MAX_UPLOAD_BYTES"
    return settings.max_body_bytes, "FHIR_MAX_BODY_BYTES"


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings,
                 client_key: Callable[[Scope], str] = client_address) -> None:
        self._app = app
        self._settings = settings
        self._client_key = client_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        scope.setdefault("state", {})  # one dict, shared by the copies later layers make
        use_max_depth(self._settings.max_json_depth)
        serve_client(lambda: self._client_key(scope))
        limit, name = body_limit(scope, self._settings)
        message = f"The request body is larger than the limit of {limit} bytes ({name})"
        try:
            _check_url(scope)
            declared = _content_length(scope)
        except InvalidRequest as error:
            await error_response(error)(scope, receive, send)
            return
        if declared is not None and declared > limit:
            await error_response(PayloadTooLarge(message))(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(message)
            return event

        await self._app(scope, counted, send)


def _check_url(scope: Scope) -> None:
    for part, raw in (("path", scope.get("raw_path")), ("query", scope.get("query_string"))):
        if not raw:
            continue
        decoded = unquote_to_bytes(raw)
        try:
            decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(f"The URL's {part} is not UTF-8 once percent-decoded") from None
        if _CONTROL.search(decoded):
            raise InvalidRequest(f"The URL's {part} holds a control character (such as NUL)")


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == b"content-length":
            if not value.isdigit():
                raise InvalidRequest(f"Content-Length '{value[:32].decode('latin-1')}' is "
                                     "not a number")
            return int(value)
    return None
