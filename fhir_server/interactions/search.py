"""FHIR search on a type: a Bundle of type searchset with paging links.
https://hl7.org/fhir/R4/http.html#search and https://hl7.org/fhir/R4/search.html"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from fhir_server.interactions.repository import ResourceRepository
from fhir_server.interactions.result import InteractionResult
from fhir_server.search.query import SearchRequest
from fhir_server.search.summary import subset


async def search(
    repository: ResourceRepository,
    request: SearchRequest,
    *,
    pairs: list[tuple[str, str]],
    base_url: str,
    path: str | None = None,
) -> InteractionResult:
    """``path``: where the links point (a compartment search's own URL), by default
    ``[base]/[type]``."""
    page = await repository.search(request)
    controls = request.controls
    path = path or f"{base_url}/{repository.resource_type}"
    kept = [(key, value) for key, value in pairs
            if key not in request.ignored and key != "_page"]

    def link(relation: str, token: str | None) -> dict[str, str]:
        query = kept + ([("_page", token)] if token else [])
        return {"relation": relation, "url": f"{path}?{urlencode(query)}" if query else path}

    links = [link("self", controls.page)]
    if page.previous_token or page.next_token:
        links.append(link("first", None))
    if page.previous_token:
        links.append(link("previous", page.previous_token))
    if page.next_token:
        links.append(link("next", page.next_token))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None and controls.total != "none":
        bundle["total"] = page.total
    bundle["link"] = links
    entries = [
        {"fullUrl": f"{base_url}/{repository.resource_type}/{resource['id']}",
         "resource": subset(resource, summary=controls.summary, elements=controls.elements),
         "search": {"mode": "match"}}
        for resource in page.resources
    ] + [
        {"fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}",
         # "The list of elements does not apply to included resources" (search.html#elements)
         "resource": subset(resource, summary=controls.summary, elements=[]),
         "search": {"mode": "include"}}
        for resource in page.included
    ]
    if controls.included_cut:
        entries.append({"resource": _included_cut_outcome(), "search": {"mode": "outcome"}})
    if request.ignored:
        entries.append({"resource": ignored_outcome(repository.resource_type, request.ignored),
                        "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return InteractionResult(200, "Bundle", body=bundle)


def ignored_outcome(searched: str, ignored: Sequence[str]) -> dict[str, Any]:
    """The warning that lenient handling left parameters out (search.html#errors: the self
    link shows what was used; this says what was not, and how to be refused instead);
    ``searched``: the type or types."""
    names = ", ".join(dict.fromkeys(name[:80] for name in ignored))
    return {"resourceType": "OperationOutcome", "issue": [{
        "severity": "warning", "code": "not-supported",
        "diagnostics": f"Ignored search parameters not supported for {searched}: "
                       f"{names} (send Prefer: handling=strict to have such a search "
                       "refused)"}]}


def _included_cut_outcome() -> dict[str, Any]:
    """The warning that _include / _revinclude wanted more than a page may carry."""
    return {"resourceType": "OperationOutcome", "issue": [{
        "severity": "warning", "code": "too-costly",
        "diagnostics": "_include / _revinclude matched more resources than the "
                       "FHIR_INCLUDE_MAX allowed on one page; some were left out (ask for "
                       "smaller pages with _count)"}]}
