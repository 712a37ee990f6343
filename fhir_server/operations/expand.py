"""``ValueSet/$expand`` (https://hl7.org/fhir/R4/valueset-operation-expand.html) over the
bundled value sets, or one sent in the body: the ValueSet with its ``expansion``, narrowed by
``filter`` (every word in the code, display or a designation, any case) and paged by
``offset`` and ``count``. ``activeOnly``, ``includeDesignations`` and ``displayLanguage`` are
honoured; ``excludeNested`` always holds (expansions are flat)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_server.errors import InvalidRequest, Issue, NotFound, UnprocessableEntity
from fhir_server.operations.operation_input import OperationInput
from mappings.fhir_dates import format_instant
from terminology.content import catalog
from terminology.expansion import Entry, NotExpandable, expand, matches, value_set

NAME = "$expand"
PARAMETERS = ("url", "valueSet", "valueSetVersion", "filter", "count", "offset", "activeOnly",
              "includeDesignations", "displayLanguage", "excludeNested")
LEFT_OUT = ("compose", "text")
"""Elements of the ValueSet not repeated in the answer."""


@dataclass(frozen=True)
class ExpandRequest:
    url: str | None
    inline: dict[str, Any] | None
    version: str | None
    filter: str | None
    count: int | None
    offset: int
    active_only: bool
    designations: bool
    language: str | None


def parse_expand(inputs: OperationInput) -> ExpandRequest:
    """The inputs of an ``$expand``; 400 naming what is wrong."""
    return ExpandRequest(
        url=inputs.text("url"), inline=inputs.resource("valueSet", "ValueSet"),
        version=inputs.text("valueSetVersion"), filter=inputs.text("filter"),
        count=inputs.integer("count"), offset=inputs.integer("offset") or 0,
        active_only=inputs.boolean("activeOnly") or False,
        designations=inputs.boolean("includeDesignations") or False,
        language=inputs.text("displayLanguage"))


def find_value_set(*, resource_id: str | None, url: str | None, version: str | None,
                   inline: dict[str, Any] | None, operation: str) -> dict[str, Any]:
    """The ValueSet an operation is about: by id (instance level), ``url`` or sent inline."""
    given = [name for name, value in (("the id", resource_id), ("url", url),
                                      ("valueSet", inline)) if value is not None]
    if len(given) != 1:
        raise InvalidRequest(f"{operation} needs exactly one of url and valueSet (or the "
                             f"ValueSet's id in the path); got {', '.join(given) or 'none'}")
    if inline is not None:
        return inline
    if resource_id is not None:
        found = catalog().by_id("ValueSet", resource_id)
        if found is None:
            raise NotFound(f"ValueSet/{resource_id} is not bundled with this server")
        return found
    assert url is not None
    found = value_set(url, version)
    if found is None:
        raise NotFound(f"The ValueSet {url[:200]}{'|' + version[:40] if version else ''} is "
                       "not bundled with this server; GET [base]/ValueSet lists those that are")
    return found


def not_expandable(resource: dict[str, Any], reason: NotExpandable) -> UnprocessableEntity:
    message = (f"The ValueSet {resource.get('url') or resource.get('id') or '(inline)'} "
               f"cannot be expanded here: {reason}")
    return UnprocessableEntity(message, issues=[Issue(message, code="not-supported")])


def _display(entry: Entry, language: str | None) -> str | None:
    if language:
        for designation in entry.designations:
            if str(designation.get("language", "")).lower() == language.lower() \
                    and designation.get("value"):
                return str(designation["value"])
    return entry.display


def _contains(entry: Entry, wanted: ExpandRequest) -> dict[str, Any]:
    item = entry.to_json()
    display = _display(entry, wanted.language)
    if display:
        item["display"] = display
    if wanted.designations and entry.designations:
        item["designation"] = list(entry.designations)
    return item


def expand_value_set(wanted: ExpandRequest, *, resource_id: str | None,
                     at: datetime) -> dict[str, Any]:
    """The ValueSet with its (filtered, paged) expansion."""
    resource = find_value_set(resource_id=resource_id, url=wanted.url, version=wanted.version,
                              inline=wanted.inline, operation=NAME)
    try:
        entries = expand(resource)
    except NotExpandable as reason:
        raise not_expandable(resource, reason) from None
    if wanted.active_only:
        entries = [entry for entry in entries if not entry.inactive]
    if wanted.filter:
        entries = [entry for entry in entries if matches(entry, wanted.filter)]
    end = None if wanted.count is None else wanted.offset + wanted.count
    page = entries[wanted.offset:end]
    parameters: list[dict[str, Any]] = []
    for name, key, value in (("filter", "valueString", wanted.filter),
                             ("offset", "valueInteger", wanted.offset or None),
                             ("count", "valueInteger", wanted.count),
                             ("activeOnly", "valueBoolean", wanted.active_only or None),
                             ("displayLanguage", "valueCode", wanted.language)):
        if value is not None:
            parameters.append({"name": name, key: value})
    expansion: dict[str, Any] = {"identifier": f"urn:uuid:{uuid.uuid4()}",
                                 "timestamp": format_instant(at), "total": len(entries)}
    if wanted.offset or wanted.count is not None:
        expansion["offset"] = wanted.offset
    if parameters:
        expansion["parameter"] = parameters
    if page:
        expansion["contains"] = [_contains(entry, wanted) for entry in page]
    answer = {key: value for key, value in resource.items() if key not in LEFT_OUT}
    answer["expansion"] = expansion
    return answer
