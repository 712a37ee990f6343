"""``_summary`` and ``_elements``: the parts of a resource a search (or a read) returns.
https://hl7.org/fhir/R4/search.html#summary"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from fhir_server.errors import InvalidRequest

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED"}
ALWAYS = frozenset({"resourceType", "id", "meta"})


@cache
def summary_elements(resource_type: str) -> frozenset[str]:
    """Top-level elements marked "summary" in the R4 definition of ``resource_type``."""
    model = get_fhir_model_class(resource_type)
    names = {field.alias for field in model.model_fields.values()
             if isinstance(field.json_schema_extra, dict)
             and field.json_schema_extra.get("summary_element_property")}
    return frozenset(name for name in names if name) | ALWAYS


READ_SUMMARY_VALUES = ("true", "text", "data", "false")
"""``_summary`` on a read: ``count`` counts search matches, so it has no meaning there."""


def read_subset_controls(query: list[tuple[str, str]]) -> tuple[str | None, list[str]]:
    """``_summary`` and ``_elements`` of a read's query (the last of each); InvalidRequest for a
    summary a read cannot give."""
    summary: str | None = None
    elements: list[str] = []
    for key, value in query:
        if key == "_summary":
            if value not in READ_SUMMARY_VALUES:
                raise InvalidRequest(f"_summary on a read must be one of "
                                     f"{', '.join(READ_SUMMARY_VALUES)}")
            summary = value
        elif key == "_elements":
            elements = [name.strip() for name in value.split(",") if name.strip()]
    return summary, elements


def subset(resource: dict[str, Any], *, summary: str | None,
           elements: list[str]) -> dict[str, Any]:
    """The resource as ``_summary`` / ``_elements`` ask; marked SUBSETTED when cut."""
    if summary in (None, "false") and not elements:
        return resource
    if summary == "true":
        keep = summary_elements(resource["resourceType"])
        chosen = {key: value for key, value in resource.items() if key in keep}
    elif summary == "text":
        chosen = {key: value for key, value in resource.items()
                  if key in ALWAYS or key == "text"}
    elif summary == "data":
        chosen = {key: value for key, value in resource.items() if key != "text"}
    else:
        wanted = ALWAYS | set(elements)
        chosen = {key: value for key, value in resource.items()
                  if key in wanted or key.lstrip("_") in wanted}
    meta = dict(chosen.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), SUBSETTED]
    chosen["meta"] = meta
    return chosen
