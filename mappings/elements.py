"""Helpers shared by the mappings: split an element into columns and an ``extra`` remainder."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from mappings.fhir_dates import instant_text

SERVER_META_KEYS = ("versionId", "lastUpdated")
"""``meta`` elements the server sets on every version (never kept in a remainder)."""


def remainder_of(resource: Mapping[str, Any], owned: Iterable[str]) -> dict[str, Any]:
    """The top-level elements no column owns, ``meta`` without its server-set elements."""
    skipped = {*owned, "meta"}
    remainder = {key: value for key, value in resource.items() if key not in skipped}
    meta = {key: value for key, value in (resource.get("meta") or {}).items()
            if key not in SERVER_META_KEYS}
    if meta:
        remainder["meta"] = meta
    return remainder


def with_server_meta(resource: dict[str, Any], main: Mapping[str, Any]) -> None:
    """Set ``meta.versionId`` and ``meta.lastUpdated`` from a main row (first in ``meta``)."""
    server = {"versionId": str(main["version_id"]),
              "lastUpdated": instant_text(main["last_updated"])}
    kept = resource.get("meta")
    resource["meta"] = order_keys(server | {key: value for key, value in kept.items()
                                           if key not in server},
                                  SERVER_META_KEYS) if kept else server


def dump_json(value: Any) -> str | None:
    """JSON text for a column, or None for an absent/empty value."""
    if value is None or value == {} or value == []:
        return None
    return orjson.dumps(value).decode()


def load_json(text: str | None) -> Any:
    if text is None:
        return None
    if isinstance(text, (dict, list)):
        return text
    return orjson.loads(text)


def split_element(
    element: Mapping[str, Any], column_keys: Mapping[str, str], json_keys: Iterable[str] = ()
) -> dict[str, Any]:
    """Columns for an element: ``column_keys`` maps FHIR key -> column; the rest goes to extra."""
    json_key_set = set(json_keys)
    row: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in element.items():
        column = column_keys.get(key)
        if column is None:
            extra[key] = value
        elif key in json_key_set:
            row[column] = dump_json(value)
        else:
            row[column] = value
    for column in column_keys.values():
        row.setdefault(column, None)
    row["extra"] = dump_json(extra)
    return row


@dataclass(frozen=True)
class JoinPlan:
    """How ``join_element`` rebuilds one datatype from a row, made once per datatype:
    ``full`` is (key, column or None, is JSON) in element order, each key followed by its
    ``_key``; ``columns`` the column-backed entries only (rows without extra need no more)."""

    full: tuple[tuple[str, str | None, bool], ...]
    columns: tuple[tuple[str, str, bool], ...]


def join_plan(
    column_keys: Mapping[str, str], order: Iterable[str], json_keys: Iterable[str] = ()
) -> JoinPlan:
    columns = dict(column_keys)
    order = tuple(order)
    json_key_set = frozenset(json_keys)
    full: list[tuple[str, str | None, bool]] = []
    for key in (*order, *(key for key in columns if key not in order)):
        full.append((key, columns.get(key), key in json_key_set))
        full.append(("_" + key, None, False))
    return JoinPlan(tuple(full), tuple((key, column, is_json) for key, column, is_json in full
                                       if column is not None))


def join_element(row: Mapping[str, Any], plan: JoinPlan) -> dict[str, Any]:
    """The FHIR element stored in ``row``, keys in the datatype's element order."""
    extra_text = row.get("extra")
    element: dict[str, Any] = {}
    if not extra_text:
        for key, column, is_json in plan.columns:
            value = row.get(column)
            if value is not None:
                element[key] = orjson.loads(value) if is_json else value
        return element
    extra = load_json(extra_text)
    for key, maybe_column, is_json in plan.full:
        if maybe_column is not None:
            value = row.get(maybe_column)
            if value is not None:
                element[key] = orjson.loads(value) if is_json else value
        elif key in extra:
            element[key] = extra[key]
    for key, value in extra.items():
        if key not in element:
            element[key] = value
    return element


@dataclass(frozen=True)
class ValuesPlan:
    """A JoinPlan over a row that arrives as a list of values in known column order (a search
    page's JSON from PostgreSQL): column names replaced by their positions, so no row dict is
    built. ``extra`` is the position of the ``extra`` column."""

    full: tuple[tuple[str, int | None, bool], ...]
    columns: tuple[tuple[str, int, bool], ...]
    extra: int


def values_plan(plan: JoinPlan, columns: Sequence[str]) -> ValuesPlan:
    """``plan`` for rows given as values in ``columns`` order (which must hold every column
    of the plan, and ``extra``)."""
    position = {column: index for index, column in enumerate(columns)}
    return ValuesPlan(
        tuple((key, None if column is None else position[column], is_json)
              for key, column, is_json in plan.full),
        tuple((key, position[column], is_json) for key, column, is_json in plan.columns),
        position["extra"])


def join_values(values: Sequence[Any], plan: ValuesPlan) -> dict[str, Any]:
    """``join_element`` of the row whose values these are: the same element, keys in the same
    order. Its loop, with positions for names, on purpose: one loop for both taking a lookup
    function cost a 20-patient search page 30-35 µs more (``row.get`` and ``values[i]`` are
    cheaper inline than as calls)."""
    extra_text = values[plan.extra]
    element: dict[str, Any] = {}
    if not extra_text:
        for key, index, is_json in plan.columns:
            value = values[index]
            if value is not None:
                element[key] = orjson.loads(value) if is_json else value
        return element
    extra = load_json(extra_text)
    for key, maybe_index, is_json in plan.full:
        if maybe_index is not None:
            value = values[maybe_index]
            if value is not None:
                element[key] = orjson.loads(value) if is_json else value
        elif key in extra:
            element[key] = extra[key]
    for key, value in extra.items():
        if key not in element:
            element[key] = value
    return element


def order_keys(element: dict[str, Any], order: Iterable[str]) -> dict[str, Any]:
    """``element`` with the keys named in ``order`` first, in that order (each ``_key`` right
    after its ``key``), then the others as they were; ``element`` itself when already so."""
    ranks = _ranks(tuple(order))
    last = len(ranks)
    keyed = [(ranks.get(key, last), key) for key in element]
    previous = -1
    for rank, _ in keyed:
        if rank < previous:
            break
        previous = rank
    else:
        return element
    keyed.sort(key=_first)  # stable: the others keep their order
    return {key: element[key] for _, key in keyed}


def _first(pair: tuple[int, str]) -> int:
    return pair[0]


@functools.lru_cache(maxsize=64)
def _ranks(order: tuple[str, ...]) -> dict[str, int]:
    """Each key of ``order`` and its ``_key`` by position (made once per order)."""
    ranks: dict[str, int] = {}
    for key in order:
        ranks.setdefault(key, len(ranks))
        ranks.setdefault("_" + key, len(ranks))
    return ranks
