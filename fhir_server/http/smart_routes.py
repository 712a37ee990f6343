"""``GET /fhir/.well-known/smart-configuration``: how to get a token for this server (public).
https://hl7.org/fhir/smart-app-launch/conformance.html"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fhir_server.errors import NotFound
from fhir_server.http.request_base import services_of
from fhir_server.http.responses import json_response
from fhir_server.security.smart import smart_configuration


async def smart_configuration_route(request: Request) -> Response:
    settings = services_of(request).settings
    if not settings.auth_enabled:
        raise NotFound("No authorisation is configured on this server (FHIR_AUTH_JWKS, "
                       "FHIR_AUTH_ISSUER, FHIR_AUTH_AUDIENCE): it needs no token")
    return json_response(smart_configuration(settings))


def smart_routes(prefix: str = "/fhir") -> list[Route]:
    return [Route(prefix + "/.well-known/smart-configuration", smart_configuration_route,
                  methods=["GET"])]
