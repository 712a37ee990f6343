"""ValueSet expansion and membership over the bundled content: ``compose.include`` of whole
code systems, listed concepts, hierarchy filters (``concept`` is-a, descendent-of, is-not-a,
in, =) and imported value sets, minus ``compose.exclude``.

A value set is expandable when every code system it takes whole (or filters) is bundled in
full; MIME types (``urn:ietf:bcp:13``) and language tags (``urn:ietf:bcp:47``) taken whole
cannot be listed, but a code is still checked against them by its syntax.
https://hl7.org/fhir/R4/valueset.html#expansion"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from terminology.code_systems import CodeSystemIndex, code_system
from terminology.content import catalog

MAX_IMPORT_DEPTH = 8

MIME_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
    r"(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=([A-Za-z0-9!#$&^_.+-]+|\"[^\"\r\n]*\"))*\s*$")
"""RFC 6838 ``type/subtype`` with optional ``; name=value`` parameters (RFC 2045)."""

LANGUAGE_TAG = re.compile(
    r"^(([A-Za-z]{2,3}(-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?"
    r"(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*(-[0-9A-WY-Za-wy-z](-[A-Za-z0-9]{2,8})+)*"
    r"(-[xX](-[A-Za-z0-9]{1,8})+)?|[xX](-[A-Za-z0-9]{1,8})+)$")
"""The shape of an RFC 5646 (BCP 47) language tag: language, script, region, variants,
extensions, private use."""

SYNTAX: dict[str, Callable[[str], bool]] = {
    "urn:ietf:bcp:13": lambda code: MIME_TYPE.match(code) is not None,
    "urn:ietf:bcp:47": lambda code: LANGUAGE_TAG.match(code) is not None,
}
"""Code systems too large to list, whose codes are checked by their syntax instead."""


class NotExpandable(Exception):
    """The value set's codes cannot be listed from the bundled content (the reason says
    why)."""


@dataclass(frozen=True)
class Entry:
    """One code of an expansion (``ValueSet.expansion.contains``)."""

    system: str
    code: str
    display: str | None = None
    version: str | None = None
    abstract: bool = False
    inactive: bool = False
    designations: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"system": self.system}
        if self.abstract:
            item["abstract"] = True
        if self.inactive:
            item["inactive"] = True
        if self.version:
            item["version"] = self.version
        item["code"] = self.code
        if self.display:
            item["display"] = self.display
        return item


def value_set(canonical: str, version: str | None = None) -> dict[str, Any] | None:
    """The bundled ValueSet of ``canonical`` (``url`` or ``url|version``)."""
    return catalog().by_url("ValueSet", canonical, version)


@cache
def _expand_bundled(resource_id: str) -> tuple[Entry, ...]:
    resource = catalog().by_id("ValueSet", resource_id)
    assert resource is not None
    return tuple(_expand(resource, 0))


def expand(resource: dict[str, Any]) -> list[Entry]:
    """Every code of ``resource`` (a bundled ValueSet or one a client sent), in the order
    its compose lists them; NotExpandable if that needs content that is not bundled."""
    bundled = catalog().by_id("ValueSet", str(resource.get("id")))
    if bundled is resource:
        return list(_expand_bundled(str(resource["id"])))
    return _expand(resource, 0)


def _expand(resource: dict[str, Any], depth: int) -> list[Entry]:
    compose = resource.get("compose")
    if not isinstance(compose, dict) or not compose.get("include"):
        raise NotExpandable(f"ValueSet {_name(resource)} has no compose.include to expand")
    found: dict[tuple[str, str], Entry] = {}
    for include in compose["include"]:
        for entry in _part(include, depth):
            found.setdefault((entry.system, entry.code), entry)
    for exclude in compose.get("exclude") or []:
        for entry in _part(exclude, depth):
            found.pop((entry.system, entry.code), None)
    return list(found.values())


def _name(resource: dict[str, Any]) -> str:
    return str(resource.get("url") or resource.get("id") or "(inline)")


def _imported(canonicals: Iterable[str], depth: int) -> list[list[Entry]]:
    if depth >= MAX_IMPORT_DEPTH:
        raise NotExpandable("ValueSet imports nest too deep")
    imported = []
    for canonical in canonicals:
        resource = value_set(canonical)
        if resource is None:
            raise NotExpandable(f"it imports ValueSet {canonical}, which is not bundled")
        imported.append(_expand(resource, depth + 1))
    return imported


def _part(part: dict[str, Any], depth: int) -> list[Entry]:
    """The codes one ``include`` (or ``exclude``) selects."""
    imported = _imported(part.get("valueSet") or [], depth)
    system = part.get("system")
    if system is None:
        if not imported:
            raise NotExpandable("an include names neither a system nor a value set")
        entries = imported[0]
    else:
        entries = _system_part(str(system), part)
    for other in imported[1 if system is None else 0:]:
        keys = {(entry.system, entry.code) for entry in other}
        entries = [entry for entry in entries if (entry.system, entry.code) in keys]
    return entries


def _entry(index: CodeSystemIndex | None, system: str, code: str,
           display: str | None = None) -> Entry:
    concept = index.find(code) if index is not None else None
    if concept is None:
        return Entry(system=system, code=code, display=display)
    return Entry(system=system, code=concept.code, display=display or concept.display,
                 version=index.version if index is not None and index.complete else None,
                 abstract=concept.abstract, inactive=concept.inactive,
                 designations=concept.designations)


def _system_part(system: str, part: dict[str, Any]) -> list[Entry]:
    index = code_system(system)
    listed = part.get("concept")
    if listed:
        return [_entry(index, system, str(item["code"]), item.get("display"))
                for item in listed]
    if index is None or not index.complete:
        what = "listed" if system not in SYNTAX else "listed (codes are checked by syntax)"
        raise NotExpandable(f"the code system {system} is not bundled, so its codes cannot "
                            f"be {what}")
    codes = list(index.concepts)
    for rule in part.get("filter") or []:
        codes = _filtered(index, rule, codes)
    return [_entry(index, system, code) for code in codes]


def _filtered(index: CodeSystemIndex, rule: dict[str, Any], codes: list[str]) -> list[str]:
    prop, op, value = rule.get("property"), rule.get("op"), str(rule.get("value", ""))
    if prop != "concept":
        raise NotExpandable(f"filters on the property '{prop}' are not supported")
    if op == "is-a":
        kept = {value, *index.descendants(value)} if value in index.concepts else set()
    elif op == "descendent-of":
        kept = set(index.descendants(value))
    elif op == "is-not-a":
        barred = {value, *index.descendants(value)}
        return [code for code in codes if code not in barred]
    elif op == "in":
        kept = {item.strip() for item in value.split(",")}
    elif op == "=":
        kept = {value}
    else:
        raise NotExpandable(f"the filter operator '{op}' is not supported")
    return [code for code in codes if code in kept]


def contains(resource: dict[str, Any], *, system: str | None, code: str) -> Entry | None:
    """The entry of ``code`` (in ``system``, or any system when None) in ``resource``; None
    if it is not in it. Code systems taken whole that cannot be listed are decided by the
    code's syntax; NotExpandable when nothing bundled can decide."""
    try:
        return _find(expand(resource), system, code)
    except NotExpandable:
        pass
    compose = resource.get("compose") or {}
    for exclude in compose.get("exclude") or []:
        if _in_part(exclude, system, code) is not None:
            return None
    for include in compose.get("include") or []:
        entry = _in_part(include, system, code)
        if entry is not None:
            return entry
    return None


def _in_part(part: dict[str, Any], system: str | None, code: str) -> Entry | None:
    part_system = str(part.get("system"))
    index = code_system(part_system)
    whole = not (part.get("concept") or part.get("filter") or part.get("valueSet"))
    if whole and part_system in SYNTAX and (index is None or not index.complete):
        if system not in (None, part_system) or not SYNTAX[part_system](code):
            return None
        return _entry(index, part_system, code)
    return _find(_part(part, 0), system, code)


def _find(entries: Iterable[Entry], system: str | None, code: str) -> Entry | None:
    return next((entry for entry in entries
                 if entry.code == code and system in (None, entry.system)), None)


def matches(entry: Entry, text: str) -> bool:
    """``$expand``'s ``filter``: every word of ``text`` appears (any case) in the code, the
    display or a designation."""
    haystack = " ".join([entry.code, entry.display or "",
                         *(str(item.get("value", "")) for item in entry.designations)])
    folded = haystack.casefold()
    return all(word in folded for word in text.casefold().split())
