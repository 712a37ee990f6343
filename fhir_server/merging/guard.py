"""After a merge, new writes must not point at the retired source: a write referring to a
merged patient is refused with 422 naming the patient it was merged into (as the $merge
definition's notes advise), so no reference is split across the pair again."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fhir_server.errors import Issue, UnprocessableEntity

_PATIENT = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def referenced_patients(node: Any, found: set[str] | None = None) -> set[str]:
    """Ids of the patients any Reference in ``node`` points at."""
    found = set() if found is None else found
    if isinstance(node, dict):
        literal = node.get("reference")
        if isinstance(literal, str):
            match = _PATIENT.search(literal)
            if match:
                found.add(match.group(1))
        for key, value in node.items():
            if key != "reference":
                referenced_patients(value, found)
    elif isinstance(node, list):
        for value in node:
            referenced_patients(value, found)
    return found


MergedInto = Callable[[set[str]], Awaitable[dict[str, str]]]


MERGE_LINKS = frozenset({"replaces", "replaced-by"})


async def refuse_merged_references(resource: dict[str, Any], merged_into: MergedInto) -> None:
    """422 when ``resource`` refers to a merged patient (a Patient's own ``replaces`` /
    ``replaced-by`` links, which record merges, excepted)."""
    if resource.get("resourceType") == "Patient":
        resource = {**resource, "link": [item for item in resource.get("link") or []
                                         if not (isinstance(item, dict)
                                                 and item.get("type") in MERGE_LINKS)]}
    ids = referenced_patients(resource)
    ids.discard(str(resource.get("id", "")) if resource.get("resourceType") == "Patient" else "")
    if not ids:
        return
    merged = await merged_into(ids)
    if merged:
        text = "; ".join(f"Patient/{source} was merged into Patient/{target}: refer to "
                         f"Patient/{target}" for source, target in sorted(merged.items()))
        raise UnprocessableEntity(text, issues=[Issue(text, code="business-rule")])
