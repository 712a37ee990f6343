"""System search, ``GET [base]?params`` and ``POST [base]/_search``
(https://hl7.org/fhir/R4/http.html#search, search.html#all): the same search on each type
``_type`` names (by default every served type that defines the parameters given), one type
after another.

Each type runs its own ordinary search, so the caller's scopes apply to each (a type the caller
may not search is left out, and named in an OperationOutcome entry when ``_type`` asked for
it), and paging is the search's own keyset paging: the page token holds the type the page
stopped in and that type's token (as ``$everything`` pages), so pages stay stable while others
write. A parameter must mean the same on every searched type: one that a named type does not
define is refused (400), since ignoring it there would return that type's every resource."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fhir_server.errors import Forbidden, InvalidRequest
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.operations.everything import decode_page, encode_page, named_types
from fhir_server.search.query import SearchRequest, parse_search
from fhir_server.search.summary import subset
from mappings.search_backing import SearchParameter

OWN_PARAMETERS = frozenset({"_type", "_page", "_count", "_total", "_format", "_pretty"})
"""Handled here, not passed to each type's search."""
ACROSS_TYPES = ("_sort", "_include", "_revinclude")
"""Refused when more than one type is searched: one type's order or references only."""


@dataclass(frozen=True)
class SystemQuery:
    types: tuple[str, ...]
    pairs: list[tuple[str, str]]
    """The parameters each type's search gets."""
    count: int
    total: bool
    """``_total=accurate|estimate``: the sum of each type's total."""
    page: tuple[int, str | None] = (0, None)
    ignored: tuple[str, ...] = ()
    """Parameters no searched type defines (ignored under lenient handling)."""
    named: bool = False
    """The types were named by ``_type`` (a type the caller may not search is then reported;
    otherwise "every type" means every type the caller may search)."""


@dataclass
class SystemPage:
    resources: list[dict[str, Any]] = field(default_factory=list)
    next_page: str | None = None
    total: int | None = None
    left_out: list[str] = field(default_factory=list)


def parse_system_search(pairs: Sequence[tuple[str, str]], served: Sequence[str],
                        registry: dict[str, dict[str, SearchParameter]], *, strict: bool,
                        default_count: int, max_count: int, base_url: str) -> SystemQuery:
    """The query; 400 naming a wrong ``_type``, a bad ``_count``, a parameter that a type
    ``_type`` names does not define, or one no type defines under ``Prefer: handling=strict``.
    Without ``_type`` the types are those that define every parameter given."""
    values = dict(pairs)
    types = tuple(served)
    if values.get("_type"):
        types = named_types(values["_type"], served, "a type served here")
    count = default_count
    if "_count" in values:
        text = values["_count"]
        if not text.isdigit():
            raise InvalidRequest("_count must be a non-negative integer")
        count = min(int(text), max_count)
    passed = [(key, value) for key, value in pairs if key not in OWN_PARAMETERS]
    if len(types) > 1:
        across = next((key for key, value in passed
                       if key.split(":")[0] in ACROSS_TYPES and value), None)
        if across is not None:
            raise InvalidRequest(f"{across[:40]} is not supported by a search of several types "
                                 f"({', '.join(types)}); search one type with it")
    ignored_by = {kind: set(_parse(kind, passed, registry, strict=False, count=count,
                                   base_url=base_url).ignored) for kind in types}
    everywhere = set.intersection(*ignored_by.values()) if ignored_by else set()
    named = bool(values.get("_type"))
    if not named:  # every type the parameters apply to
        types = tuple(kind for kind in types if ignored_by[kind] <= everywhere)
    for kind in types:
        partly = sorted(ignored_by[kind] - everywhere)
        if partly:
            raise InvalidRequest(f"Search parameter '{partly[0][:64]}' is not defined for "
                                 f"{kind}; name the types it applies to with _type")
    if everywhere and strict:
        raise InvalidRequest(f"Search parameter '{min(everywhere)[:64]}' is not defined "
                             f"for {', '.join(types)}")
    total = values.get("_total") in ("accurate", "estimate") or values.get("_summary") == "count"
    page = decode_page(values["_page"], len(types)) if values.get("_page") else (0, None)
    return SystemQuery(types, [(key, value) for key, value in passed if key not in everywhere],
                       count, total, page, tuple(sorted(everywhere)), named)


def _parse(kind: str, pairs: list[tuple[str, str]],
           registry: dict[str, dict[str, SearchParameter]], *, strict: bool, count: int,
           base_url: str, page_token: str | None = None) -> SearchRequest:
    more = [("_count", str(count))] + ([("_page", page_token)] if page_token else [])
    return parse_search(pairs + more, registry, resource_type=kind, strict=strict,
                        default_count=count, max_count=max(count, 1), base_url=base_url)


async def system_search(query: SystemQuery, *, repositories: Mapping[str, ResourceRepository],
                        registry: dict[str, dict[str, SearchParameter]],
                        base_url: str) -> SystemPage:
    """One page across the types; a next page only when there is something on it."""
    page = SystemPage()

    async def search(kind: str, count: int, token: str | None,
                     extra: Sequence[tuple[str, str]] = ()) -> tuple[SearchRequest, Any] | None:
        """The type's search, or None (and the type noted) when the caller may not search it."""
        request = _parse(kind, [*query.pairs, *extra], registry, strict=False, count=count,
                         base_url=base_url, page_token=token)
        try:
            return request, await repositories[kind].search(request)
        except Forbidden:
            if query.named and kind not in page.left_out:
                page.left_out.append(kind)
            return None

    only_total = query.count == 0 or dict(query.pairs).get("_summary") == "count"
    if query.total or only_total:
        page.total = 0
        for kind in query.types:
            counted = await search(kind, 0, None, [("_summary", "count")])
            page.total += (counted[1].total or 0) if counted else 0
    if only_total:
        return page
    start, token = query.page
    for index in range(start, len(query.types)):
        remaining = query.count - len(page.resources)
        if remaining == 0:
            for later in range(index, len(query.types)):  # the page is full: is more to come?
                probe = await search(query.types[later], 1, None)
                if probe is not None and probe[1].resources:
                    page.next_page = encode_page(later, None)
                    break
            break
        found = await search(query.types[index], remaining, token if index == start else None)
        if found is None:
            continue
        request, results = found
        controls = request.controls
        page.resources += [subset(resource, summary=controls.summary, elements=controls.elements)
                           for resource in results.resources]
        if results.next_token:
            page.next_page = encode_page(index, results.next_token)
            break
    return page
