"""``Patient/{id}/$everything`` (https://hl7.org/fhir/R4/patient-operation-everything.html): the
patient's compartment across the served types, one type after another (the Patient and those it
links first, then Coverage, DocumentReference, Communication, CommunicationRequest, Binary),
paged.

Each type is an ordinary search with the compartment clause added, so the caller's scopes apply
to each (a type the caller may not search is left out and named in an OperationOutcome entry)
and paging is the search's own keyset paging: the page token holds which type the page stopped
in and that type's token, so pages stay stable while others write."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from fhir_server.errors import Forbidden, InvalidRequest
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.search.query import parse_search
from fhir_server.security.compartment import compartment_clause
from mappings.fhir_dates import DateValueError, date_range
from mappings.search_backing import SearchParameter
from storage.stored import SearchResults

TYPES = ("Patient", "Coverage", "DocumentReference", "Communication", "CommunicationRequest",
         "Binary")
PARAMETERS = frozenset({"_since", "_type", "_count", "_page", "_format", "start", "end"})


@dataclass(frozen=True)
class EverythingQuery:
    types: tuple[str, ...]
    since: str | None
    count: int
    page: tuple[int, str | None] = (0, None)


@dataclass
class EverythingPage:
    resources: list[dict[str, Any]] = field(default_factory=list)
    next_page: str | None = None
    left_out: list[str] = field(default_factory=list)


def encode_page(index: int, token: str | None) -> str:
    raw = orjson.dumps([index, token])
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_page(text: str, limit: int) -> tuple[int, str | None]:
    """(type index below ``limit``, that type's page token) from ``encode_page``'s text;
    400 for anything else."""
    try:
        index, token = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise InvalidRequest("_page is not a page token this server gave out") from None
    if not isinstance(index, int) or not 0 <= index < limit or not (
            token is None or isinstance(token, str)):
        raise InvalidRequest("_page is not a page token this server gave out")
    return index, token


def named_types(text: str, allowed: Sequence[str], where: str) -> tuple[str, ...]:
    """The types a ``_type`` value names, each once, in its order; 400 naming the first one
    not ``allowed`` (``where``: what ``allowed`` is, for the message)."""
    wanted = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
    wrong = [kind for kind in wanted if kind not in allowed]
    if wrong:
        raise InvalidRequest(f"_type '{wrong[0][:64]}' is not {where} ({', '.join(allowed)})")
    return wanted


def parse_everything(params: Mapping[str, str], *, default_count: int,
                     max_count: int) -> EverythingQuery:
    """The operation's inputs; 400 naming an unknown parameter or a bad value."""
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise InvalidRequest(f"$everything has no parameter '{unknown[0][:40]}' "
                             "(_since, _type, _count)")
    if "start" in params or "end" in params:
        raise InvalidRequest("$everything start and end (care dates) are not supported: the "
                             "served types carry no clinical dates; use _since")
    types: tuple[str, ...] = TYPES
    if params.get("_type"):
        wanted = named_types(params["_type"], TYPES, "in the Patient compartment here")
        types = tuple(kind for kind in TYPES if kind in wanted)
    count = default_count
    if "_count" in params:
        text = params["_count"]
        if not text.isdigit() or int(text) < 1:
            raise InvalidRequest("_count must be a positive integer")
        count = min(int(text), max_count)
    since = params.get("_since") or None
    if since is not None:
        try:
            date_range(since)
        except DateValueError:
            raise InvalidRequest(f"_since '{since[:40]}' is not a FHIR instant") from None
    page = decode_page(params["_page"], len(types)) if params.get("_page") else (0, None)
    return EverythingQuery(types, since, count, page)


async def everything(patient_id: str, query: EverythingQuery, *,
                     repositories: Mapping[str, ResourceRepository],
                     registry: dict[str, dict[str, SearchParameter]],
                     base_url: str) -> EverythingPage:
    """One page of the compartment of Patient ``patient_id``; a next page only when there is
    something on it."""
    page = EverythingPage()
    start, token = query.page

    async def search(kind: str, count: int, page_token: str | None) -> SearchResults:
        pairs = [("_count", str(count))]
        if query.since:
            pairs.append(("_lastUpdated", f"gt{query.since}"))
        if page_token is not None:
            pairs.append(("_page", page_token))
        request = parse_search(pairs, registry, resource_type=kind, strict=True,
                               default_count=count, max_count=count, base_url=base_url)
        request.clauses.append(compartment_clause(kind, patient_id))
        return await repositories[kind].search(request)

    for index in range(start, len(query.types)):
        remaining = query.count - len(page.resources)
        if remaining == 0:
            for later in range(index, len(query.types)):  # the page is full: is more to come?
                try:
                    probe = await search(query.types[later], 1, None)
                except Forbidden:
                    page.left_out.append(query.types[later])  # reported here: no page has it
                    continue
                if probe.resources:
                    page.next_page = encode_page(later, None)
                    break
            break
        try:
            found = await search(query.types[index], remaining,
                                 token if index == start else None)
        except Forbidden:
            page.left_out.append(query.types[index])
            continue
        page.resources += found.resources
        if found.next_token:
            page.next_page = encode_page(index, found.next_token)
            break
    return page
