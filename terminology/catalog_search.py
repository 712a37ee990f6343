"""Search of the bundled CodeSystems, ValueSets and ConceptMaps (pure): ``_id``, ``url``,
``name``, ``title``, ``version``, ``status``, with the R4 matching rules of each parameter
type (https://hl7.org/fhir/R4/search.html): ``uri`` exact, ``string`` starts-with ignoring
case and accents (``:exact``, ``:contains``), ``token`` exact; a comma is OR, a repeated
parameter AND."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from terminology.content import catalog


@dataclass(frozen=True)
class CatalogParameter:
    type: str
    element: str
    documentation: str


PARAMETERS: dict[str, CatalogParameter] = {
    "_id": CatalogParameter("token", "id", "The resource's id"),
    "url": CatalogParameter("uri", "url", "The canonical URL, exactly"),
    "name": CatalogParameter("string", "name", "The computer-friendly name (starts with, "
                             "any case and accents; :exact, :contains)"),
    "title": CatalogParameter("string", "title", "The human-friendly title (starts with, any "
                              "case and accents; :exact, :contains)"),
    "version": CatalogParameter("token", "version", "The business version, exactly"),
    "status": CatalogParameter("token", "status", "draft | active | retired | unknown"),
}
"""The search parameters of each terminology type (the same for all three)."""

MODIFIERS = {"string": ("", "exact", "contains"), "uri": ("",), "token": ("",)}


class BadSearch(ValueError):
    """A parameter or modifier this search does not support (the message says which)."""


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


def _match(parameter: CatalogParameter, modifier: str, wanted: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if parameter.type != "string":
        return value == wanted
    if modifier == "exact":
        return value == wanted
    if modifier == "contains":
        return _folded(wanted) in _folded(value)
    return _folded(value).startswith(_folded(wanted))


def parse_criteria(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str, list[str]]]:
    """(parameter, modifier, OR-ed values) per search parameter in ``pairs``; result
    parameters (``_count``, ...) and unknown names are the caller's."""
    criteria = []
    for key, value in pairs:
        name, _, modifier = key.partition(":")
        parameter = PARAMETERS.get(name)
        if parameter is None:
            continue
        if modifier not in MODIFIERS[parameter.type]:
            raise BadSearch(f"The modifier :{modifier[:40]} is not supported on '{name}' "
                            f"({parameter.type})")
        criteria.append((name, modifier, value.split(",")))
    return criteria


def search(resource_type: str,
           criteria: list[tuple[str, str, list[str]]]) -> list[dict[str, Any]]:
    """The bundled resources of ``resource_type`` meeting every criterion, in bundle order."""
    found = []
    for resource in catalog().of_type(resource_type):
        if all(any(_match(PARAMETERS[name], modifier, value,
                          resource.get(PARAMETERS[name].element)) for value in values)
               for name, modifier, values in criteria):
            found.append(resource)
    return found
