"""Parse a search query string into typed clauses and result controls. Pure; every error
names the parameter at fault. https://hl7.org/fhir/R4/search.html"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fhir_server.errors import InvalidRequest
from fhir_server.search.values import SearchValue, parse_value, split_unescaped
from mappings.search_backing import IdentifierRows, ReferenceRows, SearchParameter, TokenRows

MODIFIERS: dict[str, frozenset[str]] = {
    "string": frozenset({"exact", "contains", "missing"}),
    "token": frozenset({"not", "text", "missing"}),
    "date": frozenset({"missing"}),
    "reference": frozenset({"missing"}),
    "uri": frozenset({"missing"}),
    "composite": frozenset({"missing"}),
}
SUMMARY_VALUES = ("true", "false", "text", "data", "count")
TOTAL_VALUES = ("none", "estimate", "accurate")
IGNORED_CONTROLS = frozenset({"_format", "_pretty"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Clause:
    """One parameter occurrence: its values are ORed; clauses are ANDed.

    A chained clause (``link:Patient.name=x``) has ``chain``: the clause the referenced
    ``target_type`` resource must meet. A reverse chain (``_has:Patient:link:name=x``) has
    ``reverse`` = (source type, its reference parameter) and ``chain``: what the source meets.
    """

    name: str
    modifier: str | None
    parameter: SearchParameter | None
    values: tuple[SearchValue, ...]
    raw: str
    chain: Clause | None = None
    target_type: str | None = None
    reverse: tuple[str, str] | None = None


@dataclass
class Controls:
    count: int
    total: str | None = None
    sort: list[tuple[str, bool]] = field(default_factory=list)
    """(column, descending) per ``_sort`` key."""
    summary: str | None = None
    elements: list[str] = field(default_factory=list)
    page: str | None = None
    includes: list[Include] = field(default_factory=list)
    included_cut: bool = False
    """Set by the search: _include / _revinclude wanted more than FHIR_INCLUDE_MAX."""


@dataclass(frozen=True)
class Include:
    """``_include`` (forward: the page's references) or ``_revinclude`` (reverse: resources
    referring to the page) through ``source_type``.``parameter``; ``iterate`` repeats it on
    what it added."""

    reverse: bool
    source_type: str
    parameter: str
    target_type: str
    iterate: bool


@dataclass
class SearchRequest:
    clauses: list[Clause]
    controls: Controls
    ignored: list[str]


def parse_search(
    pairs: list[tuple[str, str]],
    registry: dict[str, dict[str, SearchParameter]],
    *,
    resource_type: str,
    strict: bool,
    default_count: int,
    max_count: int,
    base_url: str,
) -> SearchRequest:
    """Typed clauses and controls; unknown parameters are ignored (listed in ``ignored``), or
    InvalidRequest under ``strict`` handling."""
    parameters = registry[resource_type]
    clauses: list[Clause] = []
    controls = Controls(count=default_count)
    ignored: list[str] = []
    for key, raw in pairs:
        if _CONTROL.search(key) or _CONTROL.search(raw):
            raise InvalidRequest(f"Search parameter '{_CONTROL.sub('?', key)[:80]}' contains a "
                                 "control character")
        if raw == "":  # "Empty parameters are not an error - they are just ignored"
            continue
        if key.split(":")[0] in ("_include", "_revinclude"):
            include = _include(key, raw, resource_type, registry)
            if include is not None:
                for item in include:  # each include once, however often it is asked
                    if item not in controls.includes:
                        controls.includes.append(item)
            elif strict:
                raise InvalidRequest(f"{key}={raw[:80]} cannot be served: only references "
                                     f"between served types ({', '.join(registry)}) include")
            else:
                ignored.append(key)
            continue
        if key.startswith("_") and _control(key, raw, controls, parameters, max_count):
            continue
        try:
            clauses.append(_parse_key(key, raw, resource_type, registry, base_url, depth=0))
        except _Unknown:
            if strict:
                raise InvalidRequest(
                    f"Search parameter '{key[:80]}' is not supported for {resource_type}"
                ) from None
            ignored.append(key)
    return SearchRequest(clauses, controls, ignored)


def _include(
    key: str, raw: str, resource_type: str, registry: dict[str, dict[str, SearchParameter]],
) -> list[Include] | None:
    """The includes ``key=raw`` asks for, or None when they involve types not served."""
    kind, _, modifier = key.partition(":")
    if modifier not in ("", "iterate", "recurse"):
        raise InvalidRequest(f"{kind} does not support ':{modifier}' (use :iterate)")
    reverse = kind == "_revinclude"
    iterate = bool(modifier)
    if raw == "*":
        sources = [resource_type] if not reverse else list(registry)
        found = [
            Include(reverse, source, name, target, iterate)
            for source in sources for name, parameter in registry[source].items()
            if isinstance(parameter.backing, ReferenceRows)
            for target in parameter.backing.target_types
            if target in registry and (not reverse or target == resource_type)
        ]
        return found or None
    parts = raw.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidRequest(f"{kind} '{raw[:80]}' must read Type:parameter[:targetType]")
    source, name = parts[0], parts[1]
    if source not in registry:
        return None
    parameter = registry[source].get(name)
    if parameter is None or not isinstance(parameter.backing, ReferenceRows):
        raise InvalidRequest(f"{kind} '{raw[:80]}': {name[:40]} is not a reference parameter "
                             f"of {source}")
    targets = [parts[2]] if len(parts) == 3 else list(parameter.backing.target_types)
    served = [target for target in targets if target in registry]
    if not served:
        return None
    return [Include(reverse, source, name, target, iterate) for target in served]


class _Unknown(Exception):
    """A parameter name this server does not know for the type (ignored when lenient)."""


MAX_CHAIN_DEPTH = 3


def _parse_key(
    key: str, raw: str, resource_type: str, registry: dict[str, dict[str, SearchParameter]],
    base_url: str, depth: int,
) -> Clause:
    if depth > MAX_CHAIN_DEPTH:
        raise InvalidRequest(f"Search parameter '{key[:80]}' chains more than "
                             f"{MAX_CHAIN_DEPTH} levels")
    parameters = registry[resource_type]
    if key.startswith("_has:"):
        return _reverse_chain(key, raw, resource_type, registry, base_url, depth)
    head, dot, rest = key.partition(".")
    name, _, modifier = head.partition(":")
    parameter = parameters.get(name)
    if parameter is None or not _NAME.match(name):
        raise _Unknown()
    if not dot:
        return _clause(name, modifier or None, parameter, raw, base_url)
    if not isinstance(parameter.backing, ReferenceRows):
        raise InvalidRequest(f"Search parameter '{name}' is not a reference: it cannot chain")
    target = _chain_target(name, modifier or None, parameter.backing.target_types, registry)
    inner = _parse_key(rest, raw, target, registry, base_url, depth + 1)
    return Clause(name, None, parameter, (), raw, chain=inner, target_type=target)


def _chain_target(
    name: str, modifier: str | None, target_types: tuple[str, ...],
    registry: dict[str, dict[str, SearchParameter]],
) -> str:
    if modifier:
        if modifier not in target_types:
            raise InvalidRequest(f"Search parameter '{name}' cannot refer to {modifier}")
        if modifier not in registry:
            raise InvalidRequest(f"Chaining into {modifier} is not possible: it is not "
                                 "served here")
        return modifier
    served = [target for target in target_types if target in registry]
    if len(served) != 1:
        raise InvalidRequest(f"Chained parameter '{name}' needs a type "
                             f"('{name}:Type.param'): served targets are {served or 'none'}")
    return served[0]


def _reverse_chain(
    key: str, raw: str, resource_type: str, registry: dict[str, dict[str, SearchParameter]],
    base_url: str, depth: int,
) -> Clause:
    parts = key.split(":", 3)
    if len(parts) != 4 or not all(parts):
        raise InvalidRequest(f"'{key[:80]}' must read _has:Type:reference:parameter")
    _, source_type, reference, rest = parts
    if source_type not in registry:
        raise InvalidRequest(f"_has: {source_type[:40]} is not served here")
    parameter = registry[source_type].get(reference)
    if parameter is None or not isinstance(parameter.backing, ReferenceRows) \
            or resource_type not in parameter.backing.target_types:
        raise InvalidRequest(f"_has: {source_type}.{reference[:40]} is not a reference "
                             f"to {resource_type}")
    inner = _parse_key(rest, raw, source_type, registry, base_url, depth + 1)
    return Clause("_has", None, None, (), raw, chain=inner, reverse=(source_type, reference))


def _clause(
    name: str, modifier: str | None, parameter: SearchParameter, raw: str, base_url: str
) -> Clause:
    allowed = MODIFIERS[parameter.type]
    if parameter.type == "token" and not isinstance(parameter.backing, TokenRows):
        allowed = allowed - {"text"}  # only token rows keep a display text
    backing = parameter.backing
    if isinstance(backing, IdentifierRows) or (isinstance(backing, TokenRows) and backing.of_type):
        allowed = allowed | {"of-type"}
    if parameter.type == "reference" and modifier and modifier[:1].isupper():
        allowed = allowed | {modifier}
    if modifier is not None and modifier not in allowed:
        raise InvalidRequest(
            f"Search parameter '{name}' does not support the modifier ':{modifier}'"
            f" (supported: {', '.join(sorted(allowed))})")
    alternatives = [raw] if modifier == "missing" else split_unescaped(raw, ",")
    values = tuple(parse_value(name, parameter.type, modifier, value, base_url)
                   for value in alternatives)
    return Clause(name, modifier, parameter, values, raw)


def _control(
    key: str, raw: str, controls: Controls, parameters: dict[str, SearchParameter],
    max_count: int,
) -> bool:
    """Apply a result parameter; False when ``key`` is not one."""
    if key == "_count":
        if not re.fullmatch(r"[0-9]{1,9}", raw):
            raise InvalidRequest(f"_count '{raw[:20]}' must be a non-negative integer")
        controls.count = min(int(raw), max_count)
    elif key == "_total":
        if raw not in TOTAL_VALUES:
            raise InvalidRequest(f"_total must be one of {', '.join(TOTAL_VALUES)}")
        controls.total = raw
    elif key == "_summary":
        if raw not in SUMMARY_VALUES:
            raise InvalidRequest(f"_summary must be one of {', '.join(SUMMARY_VALUES)}")
        controls.summary = raw
    elif key == "_elements":
        controls.elements = [element.strip() for element in raw.split(",") if element.strip()]
    elif key == "_sort":
        controls.sort = [_sort_key(part, parameters) for part in raw.split(",") if part]
    elif key == "_page":
        controls.page = raw
    elif key not in IGNORED_CONTROLS:
        return False
    return True


def _sort_key(part: str, parameters: dict[str, SearchParameter]) -> tuple[str, bool]:
    descending = part.startswith("-")
    name = part.lstrip("-")
    parameter = parameters.get(name)
    if parameter is None or parameter.sort_column is None:
        sortable = sorted(code for code, p in parameters.items() if p.sort_column)
        raise InvalidRequest(f"_sort '{name[:40]}' is not supported; sortable: "
                             f"{', '.join(sortable)}")
    return parameter.sort_column, descending
