"""An OpenAPI 3.1 description of the FHIR endpoints, served at ``GET /fhir/openapi.json``.

The FHIR routes are plain Starlette routes, so FastAPI does not describe them. This document
is generated from the app's route table and its CapabilityStatement, never hand-copied: each
``/fhir`` route becomes one operation per served type whose interaction the statement
declares (``{resource_type}`` filled in), operations (``$match``, ...) and the Bundle
endpoint as they are routed, search parameters from the statement's ``searchParam``.
Every answer is FHIR JSON: the resource the interaction returns, or an OperationOutcome for
the error statuses the server uses. https://hl7.org/fhir/R4/http.html"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from fhir_server.http.request_base import services_of
from fhir_server.http.responses import json_response

OPENAPI_PATH = "/fhir/openapi.json"
DOCS_PATH = "/fhir/docs"
"""The interactive documentation page (fhir_server/http/docs_routes.py): HTML, not described."""
FHIR_JSON = "application/fhir+json"
ID_PATTERN = r"^[A-Za-z0-9\-.]{1,64}$"
ERROR_STATUSES = ("400", "401", "403", "404", "405", "406", "409", "410", "412", "413",
                  "415", "422", "429", "503")
"""The error statuses the server answers (README, Errors), each with an OperationOutcome."""

INTERACTIONS = {
    ("/fhir/{resource_type}", "GET"): "search-type",
    ("/fhir/{resource_type}", "POST"): "create",
    ("/fhir/{resource_type}", "PUT"): "conditional-update",
    ("/fhir/{resource_type}", "PATCH"): "conditional-patch",
    ("/fhir/{resource_type}", "DELETE"): "conditional-delete",
    ("/fhir/{resource_type}/_search", "POST"): "search-type",
    ("/fhir/{resource_type}/_history", "GET"): "history-type",
    ("/fhir/{resource_type}/{resource_id}", "GET"): "read",
    ("/fhir/{resource_type}/{resource_id}", "PUT"): "update",
    ("/fhir/{resource_type}/{resource_id}", "PATCH"): "patch",
    ("/fhir/{resource_type}/{resource_id}", "DELETE"): "delete",
    ("/fhir/{resource_type}/{resource_id}/_history", "GET"): "history-instance",
    ("/fhir/{resource_type}/{resource_id}/_history/{version_id}", "GET"): "vread",
}
"""Route template and method -> the CapabilityStatement interaction it serves (the
``conditional-`` ones: the interaction at ``[type]?criteria``, see ``_declared``)."""

SUCCESS = {"search-type": ("200", "Bundle"), "history-type": ("200", "Bundle"),
           "history-instance": ("200", "Bundle"), "create": ("201", None),
           "read": ("200", None), "vread": ("200", None), "update": ("200", None),
           "patch": ("200", None), "delete": ("204", None),
           "conditional-update": ("200", None), "conditional-patch": ("200", None),
           "conditional-delete": ("204", None)}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_OUTCOME = {"type": "object", "required": ["resourceType", "issue"],
            "properties": {"resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                           "issue": {"type": "array", "minItems": 1}}}
_HEADER = {"schema": {"type": "string"}}
_KICKOFF = {
    "parameters": [
        {"name": "Prefer", "in": "header", "required": True, "schema": {"type": "string"},
         "description": "respond-async (required); handling=lenient ignores unsupported "
                        "parameters"},
        {"name": "_type", "in": "query", "required": False, "schema": {"type": "string"}},
        {"name": "_since", "in": "query", "required": False,
         "schema": {"type": "string", "format": "date-time"}},
        {"name": "_outputFormat", "in": "query", "required": False,
         "schema": {"type": "string"}}],
    "responses": {"202": {"description": "accepted: poll the Content-Location URL",
                          "headers": {"Content-Location": _HEADER},
                          "content": {FHIR_JSON: {"schema": _OUTCOME}}}},
}
BULK_EXPORT: dict[tuple[str, str], dict[str, Any]] = {
    ("/fhir/$export", "GET"): _KICKOFF,
    ("/fhir/Patient/$export", "GET"): _KICKOFF,
    ("/fhir/$export-status/{job_id}", "GET"): {"responses": {
        "200": {"description": "the manifest", "content": {"application/json": {"schema": {
            "type": "object", "required": ["transactionTime", "request",
                                           "requiresAccessToken", "output", "error"]}}}},
        "202": {"description": "in progress",
                "headers": {"X-Progress": _HEADER, "Retry-After": _HEADER}},
        "500": {"description": "the export failed",
                "content": {FHIR_JSON: {"schema": _OUTCOME}}}}},
    ("/fhir/$export-status/{job_id}", "DELETE"): {"responses": {
        "202": {"description": "cancelled, files removed",
                "content": {FHIR_JSON: {"schema": _OUTCOME}}}}},
    ("/fhir/$export-file/{job_id}/{file_name}", "GET"): {"responses": {
        "200": {"description": "one NDJSON file of the export",
                "content": {"application/fhir+ndjson": {"schema": {"type": "string"}}}}}},
}
"""The Bulk Data export's answers (https://hl7.org/fhir/uv/bulkdata/export.html): 202s,
the manifest and NDJSON instead of a FHIR resource."""


def _resource_schema(resource_type: str | None) -> dict[str, Any]:
    kind: dict[str, Any] = {"type": "string"}
    if resource_type is not None:
        kind = {"type": "string", "enum": [resource_type]}
    return {"type": "object", "required": ["resourceType"],
            "properties": {"resourceType": kind}}


def _content(resource_type: str | None) -> dict[str, Any]:
    return {FHIR_JSON: {"schema": _resource_schema(resource_type)}}


def _errors() -> dict[str, Any]:
    outcome = {"type": "object", "required": ["resourceType", "issue"],
               "properties": {"resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                              "issue": {"type": "array", "minItems": 1}}}
    return {status: {"description": "OperationOutcome saying what is wrong",
                     "content": {FHIR_JSON: {"schema": outcome}}}
            for status in ERROR_STATUSES}


def _path_parameter(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "pattern": ID_PATTERN}
    if name == "version_id":
        schema = {"type": "string", "pattern": r"^[0-9]{1,12}$"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _search_parameters(resource: dict[str, Any]) -> list[dict[str, Any]]:
    parameters = [{"name": parameter["name"], "in": "query", "required": False,
                   "description": f"{parameter.get('type', 'string')}: "
                                  f"{parameter.get('documentation', '')}".strip(),
                   "schema": {"type": "string"}}
                  for parameter in resource.get("searchParam", [])]
    parameters += [
        {"name": "_count", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 0}},
        {"name": "_sort", "in": "query", "required": False, "schema": {"type": "string"}},
        {"name": "_summary", "in": "query", "required": False,
         "schema": {"type": "string", "enum": ["true", "false", "text", "data", "count"]}},
        {"name": "_total", "in": "query", "required": False,
         "schema": {"type": "string", "enum": ["none", "estimate", "accurate"]}},
    ]
    return parameters


def _read_parameters(*, binary: bool) -> list[dict[str, Any]]:
    """Conditional read's validators, the parts of the resource, and a Binary's byte range."""
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
        for name in ("If-None-Match", "If-Modified-Since")]
    if binary:
        parameters += [{"name": name, "in": "header", "required": False,
                        "schema": {"type": "string"}} for name in ("Range", "If-Range")]
    else:
        parameters += [
            {"name": "_summary", "in": "query", "required": False,
             "schema": {"type": "string", "enum": ["true", "text", "data", "false"]}},
            {"name": "_elements", "in": "query", "required": False,
             "schema": {"type": "string"}}]
    return parameters


def _history_parameters() -> list[dict[str, Any]]:
    return [{"name": "_count", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 0}},
            {"name": "_since", "in": "query", "required": False,
             "schema": {"type": "string", "format": "date-time"}},
            {"name": "_at", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "only versions current at some point of this date, dateTime or "
                            "instant's period"}]


def _request_body(interaction: str | None, resource_type: str | None,
                  resource: dict[str, Any] | None) -> dict[str, Any] | None:
    if interaction in ("create", "update", "conditional-update"):
        return {"required": True, "content": _content(resource_type)}
    if interaction in ("patch", "conditional-patch"):
        operation = {"type": "object", "required": ["op", "path"],
                     "properties": {"op": {"type": "string", "enum": [
                         "add", "remove", "replace", "move", "copy", "test"]},
                         "path": {"type": "string"}, "value": {}, "from": {"type": "string"}}}
        return {"required": True, "content": {"application/json-patch+json": {
            "schema": {"type": "array", "items": operation}}}}
    if interaction == "search-type" and resource is not None:
        form = {"type": "object", "properties": {
            parameter["name"]: {"type": "string"}
            for parameter in resource.get("searchParam", [])}}
        return {"required": False, "content": {
            "application/x-www-form-urlencoded": {"schema": form}}}
    return None


def _operation(method: str, path: str, *, interaction: str | None,
               resource_type: str | None, resource: dict[str, Any] | None) -> dict[str, Any]:
    names = _PLACEHOLDER.findall(path)
    parameters = [_path_parameter(name) for name in names]
    if interaction == "search-type" and method == "GET" and resource is not None:
        parameters += _search_parameters(resource)
    elif interaction in ("history-type", "history-instance"):
        parameters += _history_parameters()
    if interaction in ("conditional-update", "conditional-patch", "conditional-delete") \
            and resource is not None:
        parameters += _search_parameters(resource)  # the criteria
    if interaction in ("update", "patch", "conditional-update", "conditional-patch"):
        parameters.append({"name": "If-Match", "in": "header", "required": False,
                           "schema": {"type": "string"}})
    if interaction in ("read", "vread"):
        parameters += _read_parameters(
            binary=resource_type == "Binary" and interaction == "read")
    responses = _errors()
    if interaction in SUCCESS:
        status, answer_type = SUCCESS[interaction]
        if status == "204":
            responses[status] = {"description": "done"}
        else:
            responses[status] = {"description": interaction,
                                 "content": _content(answer_type or resource_type)}
        if interaction in ("update", "conditional-update"):
            responses["201"] = {"description": "created by update",
                                "content": _content(resource_type)}
        if interaction in ("read", "vread"):
            responses["304"] = {"description": "not modified: the client's copy (If-None-Match, "
                                               "If-Modified-Since) is the current version"}
        if interaction in ("read", "vread") and resource_type == "Binary":
            responses[status]["content"]["*/*"] = {"schema": {}}  # the raw bytes
        if interaction == "read" and resource_type == "Binary":
            responses["206"] = {"description": "the asked byte range (Range, If-Range)",
                                "content": {"*/*": {"schema": {}}}}
            responses["416"] = {"description": "a byte range past the end (Content-Range: "
                                               "bytes */size)"}
    else:
        responses["200"] = {"description": "the answer", "content": _content(None)}
        if path in ("/fhir", "/fhir/metadata"):
            responses["200"] = {"description": "the answer", "content": _content(
                "Bundle" if path == "/fhir" else "CapabilityStatement")}
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()} {path}",
        "summary": interaction or path.rsplit("/", 1)[-1],
        "responses": responses,
    }
    if resource_type:
        operation["tags"] = [resource_type]
    if parameters:
        operation["parameters"] = parameters
    export = BULK_EXPORT.get((path, method))
    if export is not None:
        responses.pop("200")
        responses.update(export["responses"])
        if export.get("parameters"):
            operation["parameters"] = parameters + export["parameters"]
    body = _request_body(interaction, resource_type, resource)
    if body is None and method == "POST" and interaction is None:
        body = {"required": True, "content": _content(
            "Bundle" if path == "/fhir" else "Parameters")}
    if body is not None:
        operation["requestBody"] = body
    return operation


def _routes(routes: Iterable[BaseRoute]) -> Iterable[tuple[str, str]]:
    for route in routes:
        if not isinstance(route, Route) or not route.path.startswith("/fhir"):
            continue
        for method in sorted(route.methods or ()):
            if method not in ("HEAD", "OPTIONS"):
                yield route.path, method


def _template_of(path: str, served: Iterable[str]) -> tuple[str, str | None]:
    """(route template, resource type) of a concrete ``/fhir/Type/...`` path."""
    parts = path.split("/")
    if len(parts) > 2 and parts[2] in served:
        return "/".join([*parts[:2], "{resource_type}", *parts[3:]]), parts[2]
    return path, None


def _declared(resource: dict[str, Any]) -> set[str]:
    """The interactions a CapabilityStatement resource entry declares, with the conditional
    forms its ``conditionalUpdate`` (update, patch) and ``conditionalDelete`` flags add."""
    codes = {item["code"] for item in resource.get("interaction", [])}
    if resource.get("conditionalUpdate"):
        codes |= {f"conditional-{code}" for code in ("update", "patch") if code in codes}
    if resource.get("conditionalDelete", "not-supported") != "not-supported" \
            and "delete" in codes:
        codes.add("conditional-delete")
    return codes


def openapi_document(routes: Iterable[BaseRoute], capability: dict[str, Any], *,
                     bearer: bool = False) -> dict[str, Any]:
    """The OpenAPI document of the routed FHIR endpoints the CapabilityStatement declares."""
    rest = (capability.get("rest") or [{}])[0]
    served = {resource["type"]: resource for resource in rest.get("resource", [])}
    declared = {name: _declared(resource) for name, resource in served.items()}
    paths: dict[str, dict[str, Any]] = {}

    def add(path: str, method: str, **details: Any) -> None:
        paths.setdefault(path, {}).setdefault(method.lower(), _operation(method, path,
                                                                         **details))

    for path, method in _routes(routes):
        if path in (OPENAPI_PATH, DOCS_PATH) or path.endswith("/"):
            continue
        if "{resource_type}" in path:
            interaction = INTERACTIONS.get((path, method))
            operation = path.rsplit("/", 1)[-1]
            for name, resource in served.items():
                if interaction is None and operation.startswith("$") and operation[1:] in {
                        item["name"] for item in resource.get("operation", [])}:
                    add(path.replace("{resource_type}", name), method, interaction=None,
                        resource_type=name, resource=None)
                elif interaction in declared[name]:
                    add(path.replace("{resource_type}", name), method,
                        interaction=interaction, resource_type=name, resource=resource)
            continue
        template, resource_type = _template_of(path, served)
        interaction = INTERACTIONS.get((template, method))
        if resource_type is not None and interaction is not None:
            if interaction in declared[resource_type]:  # e.g. no PATCH on Binary
                add(path, method, interaction=interaction, resource_type=resource_type,
                    resource=served[resource_type])
            continue
        add(path, method, interaction=None, resource_type=resource_type, resource=None)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "FHIR R4 PRM facade",
                 "version": str((capability.get("software") or {}).get("version", "")),
                 "description": "The FHIR REST API (R4, 4.0.1), generated from the route "
                                "table and the CapabilityStatement."},
        "paths": dict(sorted(paths.items())),
    }
    if bearer:
        document["components"] = {"securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}}
        document["security"] = [{"bearer": []}]
    return document


async def openapi_route(request: Request) -> Response:
    """GET /fhir/openapi.json (built once per app)."""
    document = getattr(request.app.state, "openapi_document", None)
    if document is None:
        services = services_of(request)
        document = openapi_document(request.app.router.routes, services.capability_statement,
                                    bearer=services.settings.auth_enabled)
        request.app.state.openapi_document = document
    response = json_response(document)
    response.headers["Content-Type"] = "application/json"
    return response


def openapi_routes() -> list[Route]:
    return [Route(OPENAPI_PATH, openapi_route, methods=["GET"])]
