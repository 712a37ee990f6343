"""The searchset Bundle of a page that runs across several types (``$everything``, system
search): its links carry the query with the page token, its entries the resources, and an
OperationOutcome entry names the types the access token may not search (another, the
parameters a lenient search ignored)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from fhir_server.errors import Forbidden, operation_outcome
from fhir_server.interactions.search import ignored_outcome


def type_pages_bundle(*, path: str, base: str, pairs: Sequence[tuple[str, str]],
                      resources: Sequence[dict[str, Any]], next_page: str | None,
                      left_out: Sequence[str], total: int | None = None,
                      ignored: Sequence[str] = (), searched: str = "") -> dict[str, Any]:
    """``pairs``: the query without ``_page`` (kept in every link); ``path``: where the links
    point; ``base``: the FHIR base of the entries' fullUrl; ``ignored``: parameters left out
    (a warning names them, with the ``searched`` types). A ``first`` link is given on every
    page but a lone one."""
    token = dict(pairs).get("_page")
    kept = [(key, value) for key, value in pairs if key != "_page"]

    def link(relation: str, page_token: str | None) -> dict[str, str]:
        query = kept + ([("_page", page_token)] if page_token else [])
        return {"relation": relation, "url": f"{path}?{urlencode(query)}" if query else path}

    links = [link("self", token)]
    if next_page or token:
        links.append(link("first", None))
    if next_page:
        links.append(link("next", next_page))
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}", "resource": resource,
         "search": {"mode": "match"}} for resource in resources]
    if left_out:
        outcome = operation_outcome(Forbidden(
            "Left out, the access token may not search them: " + ", ".join(left_out)))
        outcome["issue"][0]["severity"] = "warning"
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    if ignored:
        entries.append({"resource": ignored_outcome(searched, ignored),
                        "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle
