"""The bundled terminology: every CodeSystem, ValueSet and ConceptMap in this package's JSON
files (single resources or collection Bundles), loaded once and found by id or canonical URL.

What is bundled and where it comes from: README, Terminology; the HL7 and US Core Bundles are
written by ``scripts/bundle_terminology.py``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

FOLDER = Path(__file__).parent
TYPES = ("CodeSystem", "ValueSet", "ConceptMap")


@dataclass(frozen=True)
class Catalog:
    """The bundled resources of each type, by id, in file order."""

    resources: dict[str, dict[str, dict[str, Any]]]

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return list(self.resources.get(resource_type, {}).values())

    def by_id(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        return self.resources.get(resource_type, {}).get(resource_id)

    def by_url(self, resource_type: str, canonical: str,
               version: str | None = None) -> dict[str, Any] | None:
        """The resource of ``canonical`` (``url`` or ``url|version``); None if not bundled or
        not in that version."""
        url, _, pinned = canonical.partition("|")
        wanted = version or pinned or None
        for resource in self.resources.get(resource_type, {}).values():
            if resource.get("url") == url and (wanted is None
                                               or resource.get("version") == wanted):
                return resource
        return None


def _resources(path: Path) -> list[dict[str, Any]]:
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    if data.get("resourceType") == "Bundle":
        return [entry["resource"] for entry in data.get("entry", [])]
    return [data]


@cache
def catalog() -> Catalog:
    """Everything bundled (read once per process)."""
    resources: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in TYPES}
    for path in sorted(FOLDER.glob("*.json")):
        for resource in _resources(path):
            kind = resource.get("resourceType")
            if kind not in resources:
                continue
            if resource["id"] in resources[kind]:
                raise ValueError(f"{path.name}: {kind}/{resource['id']} is bundled twice")
            resources[kind][resource["id"]] = resource
    return Catalog(resources)
