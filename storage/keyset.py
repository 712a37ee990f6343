"""Keyset paging: pages follow the sort keys of the last (or first) row shown, so a page never
repeats or skips rows when other clients write between requests (unlike OFFSET).

Page tokens are opaque to clients: url-safe base64 of JSON ``{"d": "next"|"prev", "k": [...]}``
with the boundary row's sort values, the resource id last. Nulls sort last in every order.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Integer,
    String,
    and_,
    false,
    literal_column,
    or_,
)

from fhir_server.errors import InvalidRequest

Condition = ColumnElement[bool]


@dataclass(frozen=True)
class SortKey:
    column: Any
    descending: bool


@dataclass(frozen=True)
class PageToken:
    forward: bool
    values: list[Any]


def encode_token(forward: bool, values: list[Any]) -> str:
    payload = orjson.dumps({"d": "next" if forward else "prev", "k": values}, default=_plain)
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_token(token: str, keys: list[SortKey]) -> PageToken:
    """The token's boundary, typed like the sort columns; InvalidRequest when it is not ours."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        values = list(data["k"])
        forward = data["d"] == "next"
        if len(values) != len(keys):
            raise ValueError("wrong length")
        return PageToken(forward, [_typed(key.column, value) for key, value in zip(keys, values)])
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidRequest("_page is not a page token of this search") from None


def order_by(keys: list[SortKey], forward: bool, *, fenced: bool = False) -> list[Any]:
    """ORDER BY terms; backwards is the exact reverse (so nulls come first). A column that
    holds no nulls gets no NULLS clause: ``DESC NULLS LAST`` is not the order of a B-tree
    index read backwards, so ``_sort=-_lastUpdated`` sorted every row (0.9 s at 1,000,000
    patients) where the index now serves it. ``fenced`` (PostgreSQL): text keys are sorted
    as ``key || ''``, the same order, which no index gives, so the matches are found first
    and then sorted rather than found by reading an index in sort order."""
    terms = []
    for key in keys:
        ascending = key.descending != forward
        expression = key.column
        if fenced and isinstance(key.column.type, String):
            expression = key.column.op("||")(literal_column("''"))
        term = expression.asc() if ascending else expression.desc()
        if getattr(key.column, "nullable", True):
            term = term.nulls_last() if forward else term.nulls_first()
        terms.append(term)
    return terms


def beyond(keys: list[SortKey], token: PageToken) -> Condition:
    """Rows after the boundary (forward) or before it (backward), in the search's order."""
    alternatives: list[Condition] = []
    equal_so_far: list[Condition] = []
    for key, value in zip(keys, token.values):
        alternatives.append(and_(*equal_so_far, _past(key, value, token.forward)))
        equal_so_far.append(key.column.is_(None) if value is None else key.column == value)
    return or_(*alternatives)


def _past(key: SortKey, value: Any, forward: bool) -> Condition:
    column = key.column
    if value is None:  # nulls are last: nothing non-null after them, everything before them
        return false() if forward else column.is_not(None)
    later: Condition = column < value if key.descending else column > value
    earlier: Condition = column > value if key.descending else column < value
    if not forward:
        return earlier
    # a column that holds no nulls (the id) needs no "or null": with it, PostgreSQL cannot
    # start the index scan at the boundary and reads every row before it on each page
    return or_(later, column.is_(None)) if getattr(column, "nullable", True) else later


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _typed(column: Any, value: Any) -> Any:
    if value is None:
        return None
    column_type = column.type
    if isinstance(column_type, Boolean):
        return bool(value)
    if isinstance(column_type, Integer):
        return int(value)
    if isinstance(column_type, Date):
        return date.fromisoformat(value)
    if hasattr(column_type, "impl") and "DateTime" in type(column_type.impl).__name__:
        return datetime.fromisoformat(value)
    return str(value)
