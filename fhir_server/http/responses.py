"""Responses: FHIR JSON bytes (orjson), version headers, and OperationOutcomes for errors."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Any

import orjson
from starlette.responses import Response

from fhir_server.errors import FhirError, informational_outcome, operation_outcome
from fhir_server.interactions.result import InteractionResult

FHIR_JSON_UTF8 = "application/fhir+json; charset=utf-8"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type=FHIR_JSON_UTF8)


def error_response(error: FhirError) -> Response:
    return json_response(operation_outcome(error), error.status, error.headers or None)


def interaction_response(
    result: InteractionResult, *, base_url: str, prefer: str = "representation"
) -> Response:
    """Status, ETag, Last-Modified, Location and the body ``Prefer: return`` asks for."""
    headers: dict[str, str] = {}
    stored = result.stored
    if stored is not None:
        headers["ETag"] = f'W/"{stored.version_id}"'
        headers["Last-Modified"] = format_datetime(stored.last_updated, usegmt=True)
        if result.location:
            headers["Location"] = (
                f"{base_url}/{result.resource_type}/{stored.resource_id}"
                f"/_history/{stored.version_id}"
            )
    if result.status == 204:
        return Response(status_code=204, headers=headers)
    body: Any = result.body if result.body is not None else (stored.resource if stored else None)
    if result.body is None and prefer == "minimal":
        return Response(status_code=result.status, headers=headers)
    if result.body is None and prefer == "OperationOutcome":
        body = informational_outcome(f"{result.resource_type} stored, status {result.status}")
    return json_response(body, result.status, headers)
