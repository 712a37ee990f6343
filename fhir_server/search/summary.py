"""``_summary`` and ``_elements``: the parts of a resource a search returns.
https://hl7.org/fhir/R4/search.html#summary"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

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
