"""Parse a search query string into typed clauses and result controls. Pure; every error
names the parameter at fault. https://hl7.org/fhir/R4/search.html"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fhir_server.errors import InvalidRequest
from fhir_server.search.values import SearchValue, parse_value, split_unescaped
from mappings.search_backing import IdentifierRows, SearchParameter

MODIFIERS: dict[str, frozenset[str]] = {
    "string": frozenset({"exact", "contains", "missing"}),
    "token": frozenset({"not", "text", "missing"}),
    "date": frozenset({"missing"}),
    "reference": frozenset({"missing"}),
    "uri": frozenset({"missing"}),
}
SUMMARY_VALUES = ("true", "false", "text", "data", "count")
TOTAL_VALUES = ("none", "estimate", "accurate")
IGNORED_CONTROLS = frozenset({"_format", "_pretty"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Clause:
    """One parameter occurrence: its values are ORed; clauses are ANDed."""

    name: str
    modifier: str | None
    parameter: SearchParameter
    values: tuple[SearchValue, ...]
    raw: str


@dataclass
class Controls:
    count: int
    total: str | None = None
    sort: list[tuple[str, bool]] = field(default_factory=list)
    """(column, descending) per ``_sort`` key."""
    summary: str | None = None
    elements: list[str] = field(default_factory=list)
    page: str | None = None


@dataclass
class SearchRequest:
    clauses: list[Clause]
    controls: Controls
    ignored: list[str]


def parse_search(
    pairs: list[tuple[str, str]],
    parameters: dict[str, SearchParameter],
    *,
    resource_type: str,
    strict: bool,
    default_count: int,
    max_count: int,
    base_url: str,
) -> SearchRequest:
    """Typed clauses and controls; unknown parameters are ignored (listed in ``ignored``), or
    InvalidRequest under ``strict`` handling."""
    clauses: list[Clause] = []
    controls = Controls(count=default_count)
    ignored: list[str] = []
    for key, raw in pairs:
        if key.startswith("_") and _control(key, raw, controls, parameters, max_count):
            continue
        name, _, modifier = key.partition(":")
        parameter = parameters.get(name)
        if parameter is None or not _NAME.match(name):
            if strict or "." in name or name == "_has":
                raise InvalidRequest(
                    f"Search parameter '{key[:80]}' is not supported for {resource_type}")
            ignored.append(key)
            continue
        clauses.append(_clause(name, modifier or None, parameter, raw, base_url))
    return SearchRequest(clauses, controls, ignored)


def _clause(
    name: str, modifier: str | None, parameter: SearchParameter, raw: str, base_url: str
) -> Clause:
    allowed = MODIFIERS[parameter.type]
    if name == "identifier" or isinstance(parameter.backing, IdentifierRows):
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
