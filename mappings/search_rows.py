"""Token and reference rows for the search child tables, built from any resource: each mapping
says which elements feed which parameter; these builders know the FHIR datatypes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mappings.search_text import fold


def split_reference(literal: str) -> tuple[str | None, str | None]:
    """(type, id) of ``Type/id``, ``Type/id/_history/n`` or an absolute URL ending so."""
    if literal.count("/") == 1 and "?" not in literal and not literal.endswith("/"):
        target_type, _, target_id = literal.partition("/")  # the common ``Type/id``, quickly
        return (target_type, target_id) if target_type[:1].isupper() else (None, None)
    return split_any_reference(literal)


def split_any_reference(literal: str) -> tuple[str | None, str | None]:
    """``split_reference`` by the general rule alone: the query and trailing slashes dropped,
    ``/_history/n`` dropped, then the last two segments if the type is capitalised."""
    parts = literal.split("?")[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2], parts[-1]
    return None, None


class TokenRows:
    """Rows (position, param, system, code, text_norm) of a token child table."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, param: str, system: str | None, code: str | None,
            text: str | None = None) -> None:
        if code is None and text is None:
            return
        self.rows.append({"position": len(self.rows), "param": param, "system": system,
                          "code": code, "text_norm": fold(text) if text else None})

    def code(self, param: str, value: Any, system: str | None = None) -> None:
        if isinstance(value, str) and value:
            self.add(param, system, value)

    def coding(self, param: str, coding: dict[str, Any] | None, text: str | None = None) -> None:
        if coding:
            self.add(param, coding.get("system"), coding.get("code"),
                     coding.get("display") or text)

    def codeable(self, param: str, concepts: Iterable[dict[str, Any] | None]) -> None:
        """Each coding of each CodeableConcept; a concept with text only is searchable by :text."""
        for concept in concepts:
            if not concept:
                continue
            codings = concept.get("coding") or []
            for coding in codings:
                self.coding(param, coding, concept.get("text"))
            if not codings and concept.get("text"):
                self.add(param, None, None, concept["text"])

    def identifier(self, param: str, identifiers: Iterable[dict[str, Any] | None]) -> None:
        """A row per Identifier, and one per coding of its type under ``param:of-type``."""
        present = [identifier for identifier in identifiers if identifier]
        for identifier in present:
            type_text = (identifier.get("type") or {}).get("text")
            self.add(param, identifier.get("system"), identifier.get("value"), type_text)
        for identifier in present:
            if identifier.get("value") is not None:
                for coding in type_codings(identifier):
                    self.add(of_type_param(param), of_type_system(*coding),
                             identifier["value"])

    def meta(self, resource: dict[str, Any]) -> None:
        """``_tag``, ``_security``, ``_profile`` and ``_source`` from ``meta``."""
        meta = resource.get("meta") or {}
        for param, key in (("_tag", "tag"), ("_security", "security")):
            for coding in meta.get(key) or ():
                self.coding(param, coding)
        for profile in meta.get("profile") or ():
            self.add("_profile", None, profile)
        if meta.get("source"):
            self.add("_source", None, meta["source"])


class ReferenceRows:
    """Rows (position, param, target_type, target_id, url) of a reference child table;
    contained (``#x``) references are not searchable."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, param: str, reference: dict[str, Any] | None,
            only_types: Iterable[str] | None = None) -> None:
        literal = (reference or {}).get("reference")
        if not isinstance(literal, str) or literal.startswith("#"):
            return
        target_type, target_id = split_reference(literal)
        if only_types is not None and target_type not in set(only_types):
            return
        self.rows.append({"position": len(self.rows), "param": param,
                          "target_type": target_type, "target_id": target_id, "url": literal})

    def each(self, param: str, references: Iterable[dict[str, Any] | None]) -> None:
        for reference in references:
            self.add(param, reference)


def type_codings(identifier: dict[str, Any]) -> list[tuple[str, str]]:
    """(system, code) of each coding of an Identifier's type that has both."""
    codings = (identifier.get("type") or {}).get("coding") or []
    return [(coding["system"], coding["code"]) for coding in codings
            if isinstance(coding, dict) and coding.get("system") and coding.get("code")]


def of_type_param(param: str) -> str:
    """The token-row parameter of ``param:of-type`` values."""
    return f"{param}:of-type"


def of_type_system(type_system: str, type_code: str) -> str:
    """An ``:of-type`` row's ``system``: the type coding as the query writes it
    (``type-system|type-code``); its ``code`` is the identifier's value."""
    return f"{type_system}|{type_code}"


def listed(value: Any) -> list[Any]:
    """A FHIR element as a list: absent -> [], one -> [one], many -> many."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
