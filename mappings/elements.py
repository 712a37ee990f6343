"""Helpers shared by the mappings: split an element into columns and an ``extra`` remainder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    json_key_set = set(json_keys)
    merged: dict[str, Any] = {}
    for key, column in column_keys.items():
        value = row.get(column)
        if value is None:
            continue
        merged[key] = load_json(value) if key in json_key_set else value
    extra = load_json(row.get("extra"))
    if extra:
        merged.update(extra)
    return order_keys(merged, order)


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
