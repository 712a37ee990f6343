"""Helpers shared by the mappings: split an element into columns and an ``extra`` remainder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import orjson


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


def join_element(
    row: Mapping[str, Any],
    column_keys: Mapping[str, str],
    order: Iterable[str],
    json_keys: Iterable[str] = (),
) -> dict[str, Any]:
    """The FHIR element stored in ``row``, keys in the datatype's element order."""
    extra_text = row.get("extra")
    extra = load_json(extra_text) if extra_text else None
    element: dict[str, Any] = {}
    for key, column, is_json in _join_plan(tuple(column_keys.items()), tuple(order),
                                           frozenset(json_keys)):
        if column is not None:
            value = row.get(column)
            if value is not None:
                element[key] = orjson.loads(value) if is_json else value
        elif extra and key in extra:
            element[key] = extra[key]
    if extra:
        for key, value in extra.items():
            if key not in element:
                element[key] = value
    return element


@cache
def _join_plan(
    column_items: tuple[tuple[str, str], ...], order: tuple[str, ...], json_keys: frozenset[str]
) -> tuple[tuple[str, str | None, bool], ...]:
    """(key, column or None, is JSON) in element order, each key followed by its ``_key``."""
    columns = dict(column_items)
    plan: list[tuple[str, str | None, bool]] = []
    for key in (*order, *(key for key in columns if key not in order)):
        plan.append((key, columns.get(key), key in json_keys))
        plan.append(("_" + key, None, False))
    return tuple(plan)


def order_keys(element: dict[str, Any], order: Iterable[str]) -> dict[str, Any]:
    """``element`` with the keys named in ``order`` first, in that order, then the others."""
    ordered: dict[str, Any] = {}
    for key in order:
        if key in element:
            ordered[key] = element[key]
        underscored = "_" + key
        if underscored in element:
            ordered[underscored] = element[underscored]
    for key, value in element.items():
        if key not in ordered:
            ordered[key] = value
    return ordered
