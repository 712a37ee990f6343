"""The FHIR REST routes under ``/fhir``: one table of interactions, each a few lines that read
HTTP inputs, call the interaction and render its result. https://hl7.org/fhir/R4/http.html"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from fhir_server.errors import InvalidRequest, MethodNotAllowed, NotFound
from fhir_server.http.body import read_body
from fhir_server.http.conditional_read import not_modified, not_modified_response
from fhir_server.http.negotiation import JSON_PATCH, check_body_type, response_format
from fhir_server.http.preconditions import if_match_version, prefer_handling, prefer_return
from fhir_server.http.request_base import base_url, services_of
from fhir_server.http.responses import interaction_response, json_response
from fhir_server.interactions import (
    conditional_writes,
    create,
    delete,
    history,
    patch,
    read,
    search,
    update,
)
from fhir_server.interactions.history import MAX_INT
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.search.query import Clause, parse_search
from fhir_server.search.summary import read_subset_controls, subset
from fhir_server.security.access import repositories_for
from fhir_server.validation.resource import parse_json, validate_resource

__all__ = ["base_url", "checked_id", "create_route", "fhir_routes", "run_search",
           "services_of", "update_route"]

FORM_TYPES = frozenset({"application/x-www-form-urlencoded"})
_FORMAT_PARAMETERS = frozenset({"_format", "_pretty"})
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_VERSION = re.compile(r"[0-9]{1,12}")

def _path(request: Request) -> tuple[str, str]:
    return request.path_params["resource_type"], request.path_params["resource_id"]


def _repository(request: Request, resource_type: str) -> ResourceRepository:
    format_parameter = (request.query_params.get("_format")
                        if b"_format" in request.scope["query_string"] else None)
    response_format(request.headers.get("accept"), format_parameter)
    repositories = repositories_for(request)
    repository = repositories.get(resource_type)
    if repository is None:
        raise NotFound(f"Resource type '{resource_type}' is not served here; "
                       f"served: {', '.join(sorted(repositories))}")
    return repository


def checked_id(resource_id: str) -> str:
    if not _ID.match(resource_id):
        raise InvalidRequest(
            f"'{resource_id[:80]}' is not a valid resource id: 1-64 characters of "
            "A-Z a-z 0-9 - ."
        )
    return resource_id


def _version(version_id: str) -> int:
    if not _VERSION.fullmatch(version_id) or int(version_id) > MAX_INT:
        raise NotFound(f"Version '{version_id[:32]}' does not exist")
    return int(version_id)


async def _resource_body(request: Request, resource_type: str,
                         limit: int | None = None) -> dict[str, Any]:
    check_body_type(request.headers.get("content-type"))
    body = await read_body(request, limit or services_of(request).settings.max_body_bytes)
    return validate_resource(parse_json(body), resource_type)


def _render(request: Request, result: Any) -> Response:
    return interaction_response(result, base_url=base_url(request),
                                prefer=prefer_return(request.headers.get("prefer")))


async def capabilities(request: Request) -> Response:
    """https://hl7.org/fhir/R4/http.html#capabilities"""
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    return json_response(services_of(request).capability_statement)


async def create_route(request: Request, *, body_limit: int | None = None) -> Response:
    resource_type = request.path_params["resource_type"]
    repository = _repository(request, resource_type)
    resource = await _resource_body(request, resource_type, body_limit)
    criteria = _create_criteria(request)
    if criteria is None:
        return _render(request, await create.create(repository, resource, if_none_exist=None))
    return _render(request, await conditional_writes.conditional_create(
        services_of(request).engine, repository, resource, criteria))


def _create_criteria(request: Request) -> str | None:
    """If-None-Exist, or search parameters in the URL (``POST Patient?identifier=x|1``, how
    fhirpy's ``get_or_create`` asks): the same conditional create, never silently ignored."""
    header = request.headers.get("if-none-exist")
    criteria = _url_criteria(request)
    if not criteria:
        return header
    if header is not None:
        raise InvalidRequest("Conditional create criteria are given both in If-None-Exist and "
                             "in the URL; send them once")
    return criteria


def _url_criteria(request: Request) -> str:
    """The URL's query as search criteria: ``_format`` and ``_pretty`` are not criteria."""
    return urlencode([(name, value)
                      for name, value in parse_qsl(request.url.query, keep_blank_values=True)
                      if name not in _FORMAT_PARAMETERS])


def _write_criteria(request: Request, resource_type: str, interaction: str) -> str:
    """The search criteria of ``PUT``/``PATCH``/``DELETE [type]?criteria`` (``_format`` and
    ``_pretty`` are not criteria); 405 where the CapabilityStatement does not declare the
    conditional form for the type, 400 when there are no criteria."""
    declared = _declared_resource(request, resource_type)
    allowed = (bool(declared.get("conditionalUpdate")) if interaction != "delete"
               else declared.get("conditionalDelete", "not-supported") != "not-supported")
    if not allowed:
        creates = any(item.get("code") == "create" for item in declared.get("interaction", []))
        raise MethodNotAllowed(
            f"Conditional {interaction} is not supported for {resource_type}; "
            f"{request.method} [type]/[id] names one resource",
            headers={"Allow": "GET, HEAD, POST" if creates else "GET, HEAD"})
    criteria = _url_criteria(request)
    if not criteria:
        raise InvalidRequest(
            f"A conditional {interaction} needs search criteria in the URL "
            f"({request.method} [base]/{resource_type}?identifier=system|value); to "
            f"{interaction} one known resource, use [base]/{resource_type}/[id]")
    return criteria


def _conditional_repository(request: Request, resource_type: str) -> ResourceRepository:
    """The repository of a conditional write's type. A path that names no type but that other
    routes serve with other methods (``DELETE /fhir/metadata``) answers 405 with what they
    allow, as before ``[type]`` took PUT, PATCH and DELETE."""
    if resource_type not in repositories_for(request):
        others = [route for route in request.app.router.routes if isinstance(route, Route)
                  and route.matches(request.scope)[0] is Match.PARTIAL]
        allowed = {method for route in others for method in route.methods or ()}
        if allowed:
            request.scope["endpoint"] = others[0].endpoint  # the access log names that route
            raise MethodNotAllowed(f"{request.method} is not allowed on "
                                   f"{request.url.path[:200]}",
                                   headers={"Allow": ", ".join(sorted(allowed))})
    return _repository(request, resource_type)


def _declared_resource(request: Request, resource_type: str) -> dict[str, Any]:
    rest = services_of(request).capability_statement.get("rest") or [{}]
    return next((resource for resource in rest[0].get("resource", [])
                 if resource.get("type") == resource_type), {})


async def conditional_update_route(request: Request) -> Response:
    """PUT [type]?criteria: https://hl7.org/fhir/R4/http.html#cond-update"""
    resource_type = request.path_params["resource_type"]
    repository = _conditional_repository(request, resource_type)
    criteria = _write_criteria(request, resource_type, "update")
    if_match = if_match_version(request.headers.get("if-match"))
    resource = await _resource_body(request, resource_type)
    return _render(request, await conditional_writes.conditional_update(
        services_of(request).engine, repository, resource, criteria, if_match=if_match))


async def conditional_patch_route(request: Request) -> Response:
    """PATCH [type]?criteria (JSON Patch): the one match, as PATCH [type]/[id] would."""
    resource_type = request.path_params["resource_type"]
    repository = _conditional_repository(request, resource_type)
    criteria = _write_criteria(request, resource_type, "patch")
    if_match = if_match_version(request.headers.get("if-match"))
    operations = await _patch_operations(request)
    return _render(request, await conditional_writes.conditional_patch(
        services_of(request).engine, repository, operations, criteria, if_match=if_match,
        validate=lambda data: validate_resource(data, resource_type)))


async def conditional_delete_route(request: Request) -> Response:
    """DELETE [type]?criteria: https://hl7.org/fhir/R4/http.html#3.1.0.7.1"""
    resource_type = request.path_params["resource_type"]
    repository = _conditional_repository(request, resource_type)
    criteria = _write_criteria(request, resource_type, "delete")
    return _render(request, await conditional_writes.conditional_delete(
        services_of(request).engine, repository, criteria))


async def search_route(request: Request) -> Response:
    """GET [type]?params, and POST [type]/_search with a form body (the same search)."""
    return await run_search(request, request.path_params["resource_type"])


async def run_search(request: Request, resource_type: str, *, within: Clause | None = None,
                     path: str | None = None) -> Response:
    """The search of ``resource_type`` the request asks for, narrowed by ``within`` (a
    compartment) and linked from ``path`` (default ``[base]/[type]``)."""
    repository = _repository(request, resource_type)
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        check_body_type(request.headers.get("content-type"), allowed=FORM_TYPES)
        body = await read_body(request, services_of(request).settings.max_body_bytes)
        try:
            pairs += parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise InvalidRequest("The _search form body is not UTF-8") from None
    settings = services_of(request).settings
    parsed = parse_search(
        pairs, services_of(request).search_registry, resource_type=resource_type,
        strict=prefer_handling(request.headers.get("prefer")) == "strict",
        default_count=settings.page_size_default, max_count=settings.page_size_max,
        base_url=base_url(request),
    )
    if within is not None:
        parsed.clauses.append(within)
    result = await search.search(repository, parsed, pairs=pairs, base_url=base_url(request),
                                 path=path)
    return _render(request, result)


async def type_history_route(request: Request) -> Response:
    return await _history(request, request.path_params["resource_type"], None)


async def _history(request: Request, resource_type: str, resource_id: str | None) -> Response:
    services = services_of(request)
    result = await history.history(
        _repository(request, resource_type), base_url=base_url(request),
        resource_id=resource_id, params=dict(request.query_params),
        default_count=services.settings.page_size_default,
        max_count=services.settings.page_size_max,
        strict=prefer_handling(request.headers.get("prefer")) == "strict",
    )
    return _render(request, result)


async def read_route(request: Request) -> Response:
    resource_type, resource_id = _path(request)
    repository = _repository(request, resource_type)
    parts = read_subset_controls(list(request.query_params.multi_items()))
    return _render_read(request, await read.read(repository, checked_id(resource_id)), parts)


async def update_route(request: Request, *, body_limit: int | None = None) -> Response:
    resource_type, resource_id = _path(request)
    repository = _repository(request, resource_type)
    resource_id = checked_id(resource_id)
    if_match = if_match_version(request.headers.get("if-match"))
    resource = await _resource_body(request, resource_type, body_limit)
    return _render(request, await update.update(repository, resource_id, resource,
                                                if_match=if_match))


async def patch_route(request: Request) -> Response:
    resource_type, resource_id = _path(request)
    repository = _repository(request, resource_type)
    resource_id = checked_id(resource_id)
    if_match = if_match_version(request.headers.get("if-match"))
    operations = await _patch_operations(request)
    result = await patch.patch(
        repository, resource_id, operations, if_match=if_match,
        validate=lambda data: validate_resource(data, resource_type),
    )
    return _render(request, result)


async def _patch_operations(request: Request) -> Any:
    """The JSON Patch document of a PATCH body."""
    content_type = request.headers.get("content-type") or JSON_PATCH
    check_body_type(content_type, allowed=frozenset({JSON_PATCH}))
    return parse_json(await read_body(request, services_of(request).settings.max_body_bytes))


async def delete_route(request: Request) -> Response:
    resource_type, resource_id = _path(request)
    repository = _repository(request, resource_type)
    return _render(request, await delete.delete(repository, checked_id(resource_id)))


async def instance_history_route(request: Request) -> Response:
    resource_type, resource_id = _path(request)
    return await _history(request, resource_type, checked_id(resource_id))


async def vread_route(request: Request) -> Response:
    resource_type, resource_id = _path(request)
    version_id = request.path_params["version_id"]
    repository = _repository(request, resource_type)
    parts = read_subset_controls(list(request.query_params.multi_items()))
    return _render_read(request, await read.vread(repository, checked_id(resource_id),
                                                  _version(version_id)), parts)


def _render_read(request: Request, result: Any,
                 parts: tuple[str | None, list[str]]) -> Response:
    """A read's answer (the ``parts`` its ``_summary`` / ``_elements`` ask for), or 304 when
    the client's validators name this very version."""
    summary, elements = parts
    stored = result.stored
    if stored is not None and result.status == 200 and \
            not_modified(request, stored.version_id, stored.last_updated):
        return not_modified_response(stored.version_id, stored.last_updated)
    if stored is not None and stored.resource is not None and (summary or elements):
        result = dataclasses.replace(result, body=subset(stored.resource, summary=summary,
                                                         elements=elements))
    return _render(request, result)


Handler = Callable[[Request], Awaitable[Response]]


def _by_method(handlers: dict[str, Handler]) -> Handler:
    """One endpoint for a path, so a 405 lists every method the path allows."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return endpoint


def fhir_routes(prefix: str = "/fhir") -> list[Route]:
    """The route table. Plain Starlette routes: handlers read the request themselves, so no
    per-request dependency solving is needed on the hot paths."""
    table: dict[str, dict[str, Handler]] = {
        "/metadata": {"GET": capabilities},
        "/{resource_type}": {"GET": search_route, "POST": create_route,
                             "PUT": conditional_update_route, "PATCH": conditional_patch_route,
                             "DELETE": conditional_delete_route},
        "/{resource_type}/_search": {"POST": search_route},
        "/{resource_type}/_history": {"GET": type_history_route},
        "/{resource_type}/{resource_id}": {
            "GET": read_route, "PUT": update_route, "PATCH": patch_route,
            "DELETE": delete_route,
        },
        "/{resource_type}/{resource_id}/_history": {"GET": instance_history_route},
        "/{resource_type}/{resource_id}/_history/{version_id}": {"GET": vread_route},
    }
    return [Route(prefix + path, _by_method(handlers), methods=list(handlers))
            for path, handlers in table.items()]
