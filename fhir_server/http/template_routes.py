"""HTTP for message templates, a plain JSON API (not FHIR resources) under
``/messaging/templates``: create, list, get, full update, deactivate, and a ``$render`` preview.
Faults answer an OperationOutcome whose issues name the field (``expression``)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fhir_server.errors import InvalidRequest, Issue
from fhir_server.http import routes
from fhir_server.http.body import read_body
from fhir_server.messaging.templates import (
    CATEGORIES,
    CHANNELS,
    TemplateSyntaxError,
    render_message,
)
from fhir_server.security.access import policy_for
from fhir_server.validation.json_depth import check_depth
from mappings.fhir_dates import format_instant
from storage.template_store import Template, TemplateDraft, TemplateStore

PREFIX = "/messaging/templates"
_OPTIONAL_TEXT = ("category", "subject", "description")
_READ_ONLY = frozenset({"id", "created", "updated"})
_FIELDS = frozenset({"name", "channel", "body", "variables", "active", *_OPTIONAL_TEXT})


def _store(request: Request, permission: str = "r") -> TemplateStore:
    """The templates, if the caller may read (``r``) or change (``c``/``u``) send orders:
    templates are part of CommunicationRequest, so its scopes govern them."""
    policy_for(request).require("CommunicationRequest", permission, whole=True)
    return routes.services_of(request).templates


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: {message}", issues=[Issue(f"{field}: {message}",
                                                               expression=(field,))])


def template_json(template: Template) -> dict[str, Any]:
    """The API's JSON shape of a template."""
    return {"id": template.id, "name": template.name, "channel": template.channel,
            "category": template.category, "subject": template.subject, "body": template.body,
            "description": template.description, "variables": list(template.variables),
            "active": template.active, "created": format_instant(template.created_at),
            "updated": format_instant(template.updated_at)}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


async def _object(request: Request) -> dict[str, Any]:
    body = await read_body(request, routes.services_of(request).settings.max_body_bytes)
    try:
        data = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    check_depth(data)
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object")
    return data


def _draft(data: dict[str, Any], *, name: str | None = None) -> TemplateDraft:
    """The draft a create (``name`` None) or an update of ``name`` asks for."""
    if unknown := sorted(set(data) - _FIELDS - _READ_ONLY):
        raise _invalid(unknown[0], f"unknown field(s) {', '.join(unknown)}; a template has "
                                   f"{', '.join(sorted(_FIELDS))}")
    data = {"name": name, **data} if name is not None else data
    for field in ("name", "channel", "body"):
        if not isinstance(data.get(field), str):
            raise _invalid(field, "a string is required")
    for field in _OPTIONAL_TEXT:
        if data.get(field) is not None and not isinstance(data[field], str):
            raise _invalid(field, "must be a string or null")
    variables = data.get("variables")
    if variables is not None and not (isinstance(variables, list)
                                      and all(isinstance(item, str) for item in variables)):
        raise _invalid("variables", "must be a list of variable names (strings)")
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise _invalid("active", "must be true or false")
    return TemplateDraft(name=data["name"], channel=data["channel"], body=data["body"],
                         category=data.get("category"), subject=data.get("subject"),
                         description=data.get("description"),
                         variables=tuple(variables) if variables is not None else None,
                         active=active)


def _location(request: Request, name: str) -> str:
    return f"{str(request.base_url).rstrip('/')}{PREFIX}/{name}"


async def create_template(request: Request) -> Response:
    """POST /messaging/templates: 201 with the template and its Location."""
    template = await _store(request, "c").create(_draft(await _object(request)))
    return _json(template_json(template), 201,
                 {"Location": _location(request, template.name)})


async def list_templates(request: Request) -> Response:
    """GET /messaging/templates?channel=&category=&active=: ordered by name."""
    query = request.query_params
    if unknown := sorted(set(query) - {"channel", "category", "active"}):
        raise _invalid(unknown[0], "unknown parameter; use channel, category or active")
    channel, category, active = query.get("channel"), query.get("category"), query.get("active")
    if channel is not None and channel not in CHANNELS:
        raise _invalid("channel", f"'{channel[:40]}' is not one of {', '.join(CHANNELS)}")
    if category is not None and category not in CATEGORIES:
        raise _invalid("category", f"'{category[:40]}' is not one of {', '.join(CATEGORIES)}")
    if active is not None and active not in ("true", "false"):
        raise _invalid("active", f"'{active[:40]}' is not true or false")
    found = await _store(request).list(channel=channel, category=category,
                                       active=None if active is None else active == "true")
    return _json({"templates": [template_json(template) for template in found]})


async def read_template(request: Request) -> Response:
    return _json(template_json(await _store(request).get(request.path_params["name"])))


async def update_template(request: Request) -> Response:
    """PUT /messaging/templates/{name}: replaces every editable field (``name`` renames)."""
    name = request.path_params["name"]
    template = await _store(request, "u").update(name, _draft(await _object(request), name=name))
    headers = ({"Content-Location": _location(request, template.name)}
               if template.name != name else None)
    return _json(template_json(template), 200, headers)


async def deactivate_template(request: Request) -> Response:
    """DELETE /messaging/templates/{name}: deactivates (kept for the messages naming it)."""
    return _json(template_json(await _store(request, "u").deactivate(
        request.path_params["name"])))


async def render_template(request: Request) -> Response:
    """POST /messaging/templates/{name}/$render: a preview; 200 even with missing variables."""
    template = await _store(request).get(request.path_params["name"])
    data = await _object(request)
    if unknown := sorted(set(data) - {"variables"}):
        raise _invalid(unknown[0], "unknown field; the body is {\"variables\": {...}}")
    values = data.get("variables", {})
    if not isinstance(values, dict):
        raise _invalid("variables", "must be an object of name -> string value")
    for key, value in values.items():
        if not isinstance(value, str):
            raise _invalid(f"variables.{key}", "a variable's value must be a string")
    try:
        rendered = render_message(body=template.body, subject=template.subject, values=values)
    except TemplateSyntaxError as exc:  # stored before the rules of today
        raise InvalidRequest(f"The stored template is invalid: {exc}") from None
    return _json({"subject": rendered.subject, "text": rendered.text,
                  "missing": rendered.missing, "unknown": rendered.unknown})


def template_routes() -> list[Route]:
    """The template API's routes."""
    return [
        Route(PREFIX, create_template, methods=["POST"]),
        Route(PREFIX, list_templates, methods=["GET"]),
        Route(PREFIX + "/{name}", read_template, methods=["GET"]),
        Route(PREFIX + "/{name}", update_template, methods=["PUT"]),
        Route(PREFIX + "/{name}", deactivate_template, methods=["DELETE"]),
        Route(PREFIX + "/{name}/$render", render_template, methods=["POST"]),
    ]
