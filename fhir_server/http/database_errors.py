"""Database failures as answers: a statement PostgreSQL cancelled at ``FHIR_STATEMENT_TIMEOUT_MS``
is 503 with an OperationOutcome ``timeout`` and ``Retry-After`` (the request may succeed when
the database is less busy; https://hl7.org/fhir/R4/valueset-issue-type.html), without the
statement, its parameters or the driver's message. Any other database error goes on to the
app's unexpected-error answer (500, no detail) as before."""

from __future__ import annotations

import logging

import psycopg
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.errors import TimedOut
from fhir_server.http.responses import error_response

logger = logging.getLogger("fhir_server")

QUERY_CANCELED = "57014"
RETRY_AFTER_SECONDS = 5

def is_statement_timeout(error: BaseException) -> bool:
    """A PostgreSQL ``query_canceled`` (SQLSTATE 57014), raw or wrapped by SQLAlchemy."""
    original = getattr(error, "orig", None) or error
    return (isinstance(original, psycopg.Error)
            and getattr(original, "sqlstate", None) == QUERY_CANCELED)


async def on_database_error(request: Request, error: Exception) -> Response:
    """503 for a statement timeout; any other database error is raised on."""
    if not is_statement_timeout(error):
        raise error
    logger.warning("a database statement of %s %s ran longer than "
                   "FHIR_STATEMENT_TIMEOUT_MS and was cancelled", request.method,
                   _route_of(request))
    return error_response(TimedOut(
        "The database took too long to answer and the request was stopped; "
        "try again later or narrow the request",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)}))


def _route_of(request: Request) -> str:
    """The matched route template, never the URL (ids and search values stay out of logs)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(no route)"
