"""The answer to an error nothing else handled: a FHIR OperationOutcome 500 that says nothing
of the failure (its text may hold PHI or internals), logged with the request's id.

Starlette answers unhandled errors outside every middleware, so that answer would miss the
X-Request-Id, the security headers and the access log's status; this innermost layer answers
instead, and its response travels out through all of them."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_server.errors import FhirError
from fhir_server.http.responses import error_response

logger = logging.getLogger("fhir_server")


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        responded = False

        async def watched(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        try:
            await self._app(scope, receive, watched)
        except Exception:
            request_id = scope.get("state", {}).get("request_id")
            logger.exception("unexpected error on a %s request (request id %s)",
                             scope["method"], request_id)
            if responded:
                raise
            await error_response(FhirError(
                "The server failed to process the request; the failure is logged under this "
                "answer's X-Request-Id"))(scope, receive, send)
