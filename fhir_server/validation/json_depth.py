"""How deep a JSON body may nest (``FHIR_MAX_JSON_DEPTH``): deeper objects and arrays are refused
with 400 before any recursive validation or mapping walks them.

The limit is per app; the request-limits layer (``fhir_server.http.request_limits``) sets it
for the request being served, so every JSON body parser reads it without being handed the
settings."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from fhir_server.errors import InvalidRequest, Issue

DEFAULT_MAX_DEPTH = 64

_max_depth: ContextVar[int] = ContextVar("fhir_max_json_depth", default=DEFAULT_MAX_DEPTH)


def use_max_depth(limit: int) -> None:
    """Sets the limit for the current request (its task and the tasks it starts)."""
    _max_depth.set(limit)


def max_depth() -> int:
    return _max_depth.get()


def too_deep(limit: int | None = None) -> InvalidRequest:
    """The error for a body nested deeper than the limit."""
    limit = max_depth() if limit is None else limit
    message = (f"The JSON body is nested more than {limit} levels deep "
               "(FHIR_MAX_JSON_DEPTH)")
    return InvalidRequest(message, issues=[Issue(message, code="too-long")])


def check_depth(value: Any, limit: int | None = None) -> None:
    """InvalidRequest when ``value`` nests objects and arrays deeper than ``limit`` (default:
    the current request's). Iterative, so a hostile value cannot exhaust the stack here."""
    limit = max_depth() if limit is None else limit
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise too_deep(limit)
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))
