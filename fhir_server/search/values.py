"""Typed search values, one parser per parameter type. Pure: no storage access.
https://hl7.org/fhir/R4/search.html"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from fhir_server.errors import InvalidRequest
from mappings.fhir_dates import DateValueError, date_range

DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_PREFIXED = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)(?=\d)")


@dataclass(frozen=True)
class StringValue:
    text: str


@dataclass(frozen=True)
class TokenValue:
    """``system``: None when no ``|`` was given (any system), "" for ``|code`` (no system);
    ``code`` None for ``system|``."""

    system: str | None
    code: str | None


@dataclass(frozen=True)
class TypedIdentifierValue:
    """``:of-type``: an identifier's type (system, code) and value."""

    type_system: str
    type_code: str
    value: str


@dataclass(frozen=True)
class DateValue:
    prefix: str
    low: datetime
    high: datetime


@dataclass(frozen=True)
class ReferenceValue:
    """``target_type`` may be None (any type); ``url`` is the literal as given; ``foreign``: an
    absolute URL of another server, matched by its URL only; ``base``: this server's base, the
    only absolute URLs a local value matches."""

    target_type: str | None
    target_id: str
    url: str
    foreign: bool = False
    base: str = ""


@dataclass(frozen=True)
class MissingValue:
    missing: bool


@dataclass(frozen=True)
class CompositeValue:
    """A composite parameter's value: one value per component, ``$``-separated in the query
    (``relationship=replaces$DocumentReference/1``)."""

    parts: tuple[TokenValue, ReferenceValue]


SearchValue = (StringValue | TokenValue | TypedIdentifierValue | DateValue | ReferenceValue
               | MissingValue | CompositeValue)


def split_unescaped(text: str, separator: str, limit: int = -1) -> list[str]:
    """``text`` split on ``separator`` where it is not escaped with ``\\``; escapes kept."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator and limit != 0:
            parts.append("".join(current))
            current = []
            limit -= 1
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    """``\\,`` ``\\|`` ``\\$`` ``\\\\`` back to the characters they stand for."""
    return re.sub(r"\\([,|$\\])", r"\1", text)


def parse_value(
    name: str, parameter_type: str, modifier: str | None, raw: str, base_url: str
) -> SearchValue:
    """One (already OR-split) value of parameter ``name``; InvalidRequest naming it."""
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise InvalidRequest(f"Search parameter '{name}:missing' takes true or false")
        return MissingValue(raw == "true")
    if raw == "":
        raise InvalidRequest(f"Search parameter '{name}' has an empty value")
    if parameter_type == "string" or (parameter_type == "token" and modifier == "text"):
        return StringValue(unescape(raw))
    if parameter_type == "uri":
        return TokenValue(None, unescape(raw))
    if parameter_type == "token":
        if modifier == "of-type":
            return _of_type(name, raw)
        return _token(raw)
    if parameter_type == "date":
        return _date(name, raw)
    if parameter_type == "reference":
        return _reference(name, modifier, unescape(raw), base_url)
    if parameter_type == "composite":
        return _token_reference(name, raw, base_url)
    raise InvalidRequest(f"Search parameter '{name}' has unsupported type {parameter_type}")


def _token_reference(name: str, raw: str, base_url: str) -> CompositeValue:
    """A token$reference composite (the only composite shape the served types have)."""
    parts = split_unescaped(raw, "$")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise InvalidRequest(f"Search parameter '{name}' takes token$reference, as in "
                             f"'replaces$DocumentReference/1', not '{raw[:80]}'")
    return CompositeValue((_token(parts[0]), _reference(name, None, unescape(parts[1]),
                                                        base_url)))


def _token(raw: str) -> TokenValue:
    parts = split_unescaped(raw, "|", limit=1)
    if len(parts) == 1:
        return TokenValue(None, unescape(parts[0]))
    system, code = unescape(parts[0]), unescape(parts[1])
    return TokenValue(system, code or None)


def _of_type(name: str, raw: str) -> TypedIdentifierValue:
    parts = split_unescaped(raw, "|", limit=2)
    if len(parts) != 3 or not all(parts):
        raise InvalidRequest(
            f"Search parameter '{name}:of-type' needs type-system|type-code|value")
    type_system, type_code, value = (unescape(part) for part in parts)
    return TypedIdentifierValue(type_system, type_code, value)


def _date(name: str, raw: str) -> DateValue:
    prefix = "eq"
    match = _PREFIXED.match(raw)
    if match:
        prefix, raw = match.group(1), raw[2:]
    try:
        low, high = date_range(raw)
    except DateValueError as exc:
        raise InvalidRequest(f"Search parameter '{name}': {exc}") from None
    return DateValue(prefix, low, high)


def _reference(name: str, modifier: str | None, raw: str, base_url: str) -> ReferenceValue:
    literal = raw
    base = base_url.rstrip("/")
    if base and literal.startswith(base + "/"):
        literal = literal[len(base) + 1:]
    if "://" in literal or literal.startswith("urn:"):
        parts = literal.rstrip("/").split("/")
        return ReferenceValue(parts[-2] if len(parts) >= 2 else None, parts[-1], raw,
                              foreign=True, base=base)
    pieces = literal.split("/")
    if len(pieces) == 1:
        return ReferenceValue(modifier, pieces[0], raw, base=base)
    if len(pieces) == 2 and pieces[0] and pieces[1]:
        if modifier and modifier != pieces[0]:
            raise InvalidRequest(
                f"Search parameter '{name}:{modifier}' has a value of type {pieces[0]}")
        return ReferenceValue(pieces[0], pieces[1], raw, base=base)
    raise InvalidRequest(f"Search parameter '{name}': '{raw[:80]}' is not a reference")
