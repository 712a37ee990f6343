"""``POST [base]`` with a batch or transaction Bundle. https://hl7.org/fhir/R4/http.html#transaction"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fhir_server.http.body import read_body
from fhir_server.http.negotiation import check_body_type, response_format
from fhir_server.http.preconditions import prefer_return
from fhir_server.http.responses import json_response
from fhir_server.http.routes import base_url, services_of
from fhir_server.interactions.bundle_batch import batch
from fhir_server.interactions.bundle_entries import BundleContext
from fhir_server.interactions.bundle_plan import plan_bundle
from fhir_server.interactions.bundle_transaction import transaction
from fhir_server.security.access import repositories_for
from fhir_server.validation.resource import parse_json


async def bundle_route(request: Request) -> Response:
    services = services_of(request)
    settings = services.settings
    format_parameter = (request.query_params.get("_format")
                        if b"_format" in request.scope["query_string"] else None)
    response_format(request.headers.get("accept"), format_parameter)
    check_body_type(request.headers.get("content-type"))
    body = parse_json(await read_body(request, settings.bundle_max_bytes))
    base = base_url(request)
    plan = plan_bundle(body, served=services.repositories.keys(), base_url=base,
                       max_entries=settings.bundle_max_entries)
    context = BundleContext(
        repositories=repositories_for(request), search_registry=services.search_registry,
        base_url=base, page_size_default=settings.page_size_default,
        page_size_max=settings.page_size_max, prefer=prefer_return(request.headers.get("prefer")))
    run = transaction if plan.kind == "transaction" else batch
    return json_response(await run(plan, context, services.engine))


def bundle_routes(prefix: str = "/fhir") -> list[Route]:
    return [Route(path, bundle_route, methods=["POST"]) for path in (prefix, prefix + "/")]
