"""The one door every handler (FHIR routes, Bundles, operations, the console) goes through to
reach the data: ``repositories_for`` gives the request's repositories, checked against the
caller's scopes and audited; ``authorize_operation`` and ``audit_operation`` do the same for
operations that are not plain interactions ($match, $merge, $unmerge)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.requests import Request

from fhir_server.interactions.repository import ResourceRepository
from fhir_server.services import Services


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def repositories_for(request: Request) -> Mapping[str, ResourceRepository]:
    """The served repositories as this request's caller may use them."""
    return _services(request).repositories


def authorize_operation(request: Request, operation: str,
                        patient_ids: Sequence[str] = ()) -> None:
    """Raise Forbidden unless the caller may run ``operation`` (``Patient/$merge``, ...) on
    these patients."""


async def audit_operation(request: Request, operation: str, *, entities: Sequence[str],
                          succeeded: bool) -> None:
    """Record that ``operation`` ran on ``entities`` (``Type/id`` references)."""
