"""The concepts of a bundled CodeSystem, flattened with their place in the hierarchy, and the
codes other bundled ValueSets list for systems that are not bundled whole (languages, LOINC
document classes, v3 NullFlavor).

https://hl7.org/fhir/R4/codesystem.html"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from terminology.content import catalog

EXTERNAL_NAMES = {
    "urn:ietf:bcp:47": "IETF BCP-47 language tags",
    "urn:ietf:bcp:13": "MIME types (IETF BCP-13)",
    "http://loinc.org": "LOINC",
    "http://terminology.hl7.org/CodeSystem/v3-NullFlavor": "NullFlavor",
    "http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender": "AdministrativeGender",
    "https://www.usps.com/": "USPS two-letter state codes",
}
"""Names of code systems that are not bundled but whose codes bundled ValueSets list."""


@dataclass(frozen=True)
class Concept:
    code: str
    display: str | None
    definition: str | None = None
    designations: tuple[dict[str, Any], ...] = ()
    properties: tuple[dict[str, Any], ...] = ()
    parents: tuple[str, ...] = ()
    children: tuple[str, ...] = ()

    @property
    def abstract(self) -> bool:
        return any(prop.get("code") in ("abstract", "notSelectable")
                   and prop.get("valueBoolean") is True for prop in self.properties)

    @property
    def inactive(self) -> bool:
        return any(prop.get("code") == "status" and prop.get("valueCode") in ("retired",
                                                                              "inactive")
                   or prop.get("code") == "inactive" and prop.get("valueBoolean") is True
                   for prop in self.properties)


@dataclass(frozen=True)
class CodeSystemIndex:
    """A code system's concepts by code (pre-order of its hierarchy), and what it is."""

    url: str
    name: str
    version: str | None
    case_sensitive: bool
    complete: bool
    """Every concept is here (``content: complete``), or only those some ValueSet lists."""
    concepts: dict[str, Concept] = field(default_factory=dict)

    def find(self, code: str) -> Concept | None:
        concept = self.concepts.get(code)
        if concept is None and not self.case_sensitive:
            folded = code.casefold()
            concept = next((item for key, item in self.concepts.items()
                            if key.casefold() == folded), None)
        return concept

    def descendants(self, code: str) -> list[str]:
        """The codes below ``code`` (not itself), pre-order."""
        found: list[str] = []
        seen: set[str] = set()

        def walk(current: str) -> None:
            concept = self.concepts.get(current)
            for child in concept.children if concept else ():
                if child not in seen:
                    seen.add(child)
                    found.append(child)
                    walk(child)

        walk(code)
        return found


def _flatten(concepts: list[dict[str, Any]], parent: str | None,
             out: dict[str, dict[str, Any]]) -> None:
    for concept in concepts:
        entry = out.setdefault(concept["code"], {"concept": concept, "parents": [],
                                                 "children": []})
        if parent is not None:
            entry["parents"].append(parent)
        children = concept.get("concept") or []
        entry["children"].extend(child["code"] for child in children)
        _flatten(children, concept["code"], out)


def _parent_properties(concept: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Hierarchy given by ``parent``/``child`` properties instead of nesting."""
    parents = [str(prop["valueCode"]) for prop in concept.get("property", [])
               if prop.get("code") == "parent" and "valueCode" in prop]
    children = [str(prop["valueCode"]) for prop in concept.get("property", [])
                if prop.get("code") == "child" and "valueCode" in prop]
    return parents, children


def index_of(resource: dict[str, Any]) -> CodeSystemIndex:
    flat: dict[str, dict[str, Any]] = {}
    _flatten(resource.get("concept") or [], None, flat)
    index = CodeSystemIndex(
        url=resource["url"], name=str(resource.get("name") or resource["url"]),
        version=resource.get("version"),
        case_sensitive=resource.get("caseSensitive", True) is not False,
        complete=resource.get("content", "complete") == "complete")
    for code, entry in flat.items():
        raw = entry["concept"]
        parents, children = _parent_properties(raw)
        index.concepts[code] = Concept(
            code=code, display=raw.get("display"), definition=raw.get("definition"),
            designations=tuple(raw.get("designation") or ()),
            properties=tuple(raw.get("property") or ()),
            parents=tuple(dict.fromkeys(entry["parents"] + parents)),
            children=tuple(dict.fromkeys(entry["children"] + children)))
    return index


@cache
def code_system(url: str) -> CodeSystemIndex | None:
    """The bundled code system of ``url`` (``url|version`` pins a version), else the codes
    bundled ValueSets list for it (``complete`` False), else None."""
    bundled = catalog().by_url("CodeSystem", url)
    if bundled is not None:
        return index_of(bundled)
    listed: dict[str, Concept] = {}
    for code, concept in _listed_concepts(url.partition("|")[0]):
        if code not in listed or listed[code].display is None:
            listed[code] = concept
    if not listed:
        return None
    return CodeSystemIndex(url=url, name=EXTERNAL_NAMES.get(url, url), version=None,
                           case_sensitive=url != "urn:ietf:bcp:47", complete=False,
                           concepts=listed)


def _listed_concepts(system: str) -> Iterator[tuple[str, Concept]]:
    for value_set in catalog().of_type("ValueSet"):
        for include in (value_set.get("compose") or {}).get("include", []):
            if include.get("system") != system:
                continue
            for concept in include.get("concept") or []:
                yield concept["code"], Concept(
                    code=concept["code"], display=concept.get("display"),
                    designations=tuple(concept.get("designation") or ()))
