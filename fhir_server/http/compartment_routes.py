"""Compartment search: ``GET [base]/Patient/{id}/{type}?params`` (and ``POST .../_search``) is
the search of ``type`` limited to that patient's compartment, with paging links on the
compartment URL. https://hl7.org/fhir/R4/compartmentdefinition.html#search"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fhir_server.errors import NotFound
from fhir_server.http import routes
from fhir_server.security.compartment import MEMBERSHIP, compartment_clause


async def compartment_search(request: Request) -> Response:
    patient_id = routes.checked_id(request.path_params["resource_id"])
    resource_type = request.path_params["compartment_type"]
    if resource_type not in MEMBERSHIP:
        raise NotFound(f"'{resource_type[:64]}' is not in the Patient compartment here; "
                       f"in it: {', '.join(sorted(MEMBERSHIP))}")
    path = f"{routes.base_url(request)}/Patient/{patient_id}/{resource_type}"
    return await routes.run_search(request, resource_type,
                                   within=compartment_clause(resource_type, patient_id),
                                   path=path)


def compartment_routes(prefix: str = "/fhir") -> list[Route]:
    """Mounted after the generic routes: ``_history`` and ``$operations`` match first."""
    return [Route(prefix + "/Patient/{resource_id}/{compartment_type}", compartment_search,
                  methods=["GET"]),
            Route(prefix + "/Patient/{resource_id}/{compartment_type}/_search",
                  compartment_search, methods=["POST"])]
