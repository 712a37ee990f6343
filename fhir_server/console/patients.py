"""What the patient search and the patient page show, read through the repositories the
request may use (so scopes and the audit apply as on the API), searches built with the API's
own parser."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir_server.console import display
from fhir_server.errors import FhirError, InvalidRequest
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.search.query import parse_search
from fhir_server.settings import Settings
from storage.stored import SearchResults, StoredResource

Repositories = Mapping[str, ResourceRepository]
SEARCH_FIELDS = (("name", "Name"), ("birthdate", "Birth date"), ("identifier", "Identifier"),
                 ("phone", "Phone"))
PAGE_SIZE = 20
LIST_SIZE = 20


async def run_search(repositories: Repositories, resource_type: str,
                     pairs: list[tuple[str, str]], *, settings: Settings,
                     base_url: str) -> SearchResults:
    """A FHIR search, parsed exactly as ``GET [base]/{type}?...`` is (strict: a parameter
    the type does not know is an error, not silently dropped)."""
    registry = {name: repository.search_parameters
                for name, repository in repositories.items()}
    parsed = parse_search(pairs, registry, resource_type=resource_type, strict=True,
                          default_count=PAGE_SIZE, max_count=settings.page_size_max,
                          base_url=base_url)
    return await repositories[resource_type].search(parsed)


@dataclass(frozen=True)
class PatientRow:
    id: str
    name: str
    birth_date: str
    gender: str
    mrn: str
    phone: str
    place: str


def patient_row(resource: dict[str, Any], mrn_system: str) -> PatientRow:
    address = (resource.get("address") or [{}])[0]
    return PatientRow(
        id=str(resource.get("id")), name=display.display_name(resource),
        birth_date=str(resource.get("birthDate") or ""), gender=str(resource.get("gender") or ""),
        mrn=display.mrn(resource, mrn_system),
        phone=next(iter(display.telecoms(resource, "phone")), ""),
        place=", ".join(part for part in (address.get("city"), address.get("state"))
                        if isinstance(part, str)))


@dataclass
class SearchPage:
    criteria: dict[str, str]
    rows: list[PatientRow] = field(default_factory=list)
    total: int | None = None
    next_page: str | None = None
    previous_page: str | None = None
    error: str | None = None
    searched: bool = False


async def search_patients(repositories: Repositories, criteria: dict[str, str],
                          page_token: str | None, *, settings: Settings,
                          base_url: str) -> SearchPage:
    """A page of patients meeting every filled criterion (name, birth date, identifier,
    phone), by family then given name; nothing is searched while all are empty."""
    found = SearchPage(criteria)
    pairs = [(name, criteria[name].strip()) for name, _ in SEARCH_FIELDS
             if criteria.get(name, "").strip()]
    if not pairs:
        return found
    pairs += [("_count", str(PAGE_SIZE)), ("_sort", "family,given,_id"), ("_total", "accurate")]
    if page_token:
        pairs.append(("_page", page_token))
    try:
        results = await run_search(repositories, "Patient", pairs, settings=settings,
                                   base_url=base_url)
    except InvalidRequest as error:
        found.error = str(error)
        return found
    found.searched = True
    found.rows = [patient_row(resource, settings.mrn_system) for resource in results.resources]
    found.total = results.total
    found.next_page, found.previous_page = results.next_token, results.previous_token
    return found


@dataclass(frozen=True)
class VersionView:
    version: int
    when: str
    method: str
    changed: list[str]


@dataclass(frozen=True)
class MergeView:
    merge_id: str
    source: str
    target: str
    when: str
    who: str
    undone: bool


@dataclass
class PatientPage:
    id: str
    resource: dict[str, Any]
    name: str
    identifiers: list[display.IdentifierView]
    phones: list[str]
    emails: list[str]
    addresses: list[str]
    language: str
    replaced_by: list[str]
    documents: list[display.DocumentView]
    documents_total: int | None
    sent: list[display.MessageView]
    sent_total: int | None
    scheduled: list[display.MessageView]
    scheduled_total: int | None
    versions: list[VersionView]
    versions_total: int
    merges: list[MergeView]


def _versions(history: list[StoredResource]) -> list[VersionView]:
    """Newest first, each with the elements it changed from the version before it."""
    views: list[VersionView] = []
    for index, stored in enumerate(history):
        before = history[index + 1].resource if index + 1 < len(history) else None
        changed = (["(deleted)"] if stored.resource is None else
                   ["(created)"] if stored.version_id == 1 else
                   display.changed_elements(before, stored.resource))
        views.append(VersionView(stored.version_id,
                                 stored.last_updated.strftime("%Y-%m-%d %H:%M:%S UTC"),
                                 stored.method, changed))
    return views


def merges_of(provenances: list[dict[str, Any]], patient_id: str) -> list[MergeView]:
    """The merges a patient took part in, from their Provenance (``Provenance/{merge id}``
    and ``{merge id}-undo`` once undone), newest first."""
    undone = {str(p.get("id")).removesuffix("-undo") for p in provenances
              if str(p.get("id")).endswith("-undo")}
    found: list[MergeView] = []
    for provenance in provenances:
        merge_id = str(provenance.get("id"))
        if merge_id.endswith("-undo"):
            continue
        revised = str(((provenance.get("entity") or [{}])[0].get("what") or {})
                      .get("reference", ""))
        source = revised.split("/")[1] if revised.startswith("Patient/") else ""
        patients = {str(t.get("reference", "")).split("/")[1]
                    for t in provenance.get("target") or []
                    if str(t.get("reference", "")).startswith("Patient/")}
        target = next(iter(sorted(patients - {source})), "")
        who = str(((provenance.get("agent") or [{}])[0].get("who") or {}).get("display", ""))
        found.append(MergeView(merge_id, source, target,
                               str(provenance.get("recorded", ""))[:19].replace("T", " "),
                               who, merge_id in undone))
    return [merge for merge in found if patient_id in (merge.source, merge.target)]


async def _listed(repositories: Repositories, resource_type: str, pairs: list[tuple[str, str]],
                  *, settings: Settings, base_url: str) -> SearchResults | None:
    """A search for a section of the page; None when the caller may not see that type."""
    try:
        return await run_search(repositories, resource_type, pairs, settings=settings,
                                base_url=base_url)
    except FhirError as error:
        if error.status in (401, 403):
            return None
        raise


async def patient_page(repositories: Repositories, patient_id: str, *, settings: Settings,
                       base_url: str) -> PatientPage:
    stored = await repositories["Patient"].read(patient_id)
    resource = stored.resource or {}
    reference = f"Patient/{patient_id}"

    async def listed(resource_type: str, pairs: list[tuple[str, str]]) -> SearchResults | None:
        return await _listed(repositories, resource_type, pairs, settings=settings,
                             base_url=base_url)

    count, total = ("_count", str(LIST_SIZE)), ("_total", "accurate")
    documents = await listed("DocumentReference",
                             [("patient", reference), ("_sort", "-date"), count, total])
    sent = await listed("Communication",
                        [("recipient", reference), ("_sort", "-sent"), count, total])
    scheduled = await listed("CommunicationRequest",
                             [("recipient", reference), ("_sort", "-occurrence"), count, total])
    provenance = await listed("Provenance", [("target", reference), ("_count", "100")])
    versions_total, history = await repositories["Patient"].history(
        resource_id=patient_id, since=None, count=LIST_SIZE + 1, offset=0)
    return PatientPage(
        id=patient_id, resource=resource, name=display.display_name(resource),
        identifiers=display.identifiers(resource, settings.mrn_system),
        phones=display.telecoms(resource, "phone"), emails=display.telecoms(resource, "email"),
        addresses=display.addresses(resource), language=display.language(resource),
        replaced_by=display.link_targets(resource, "replaced-by"),
        documents=[display.document(r) for r in documents.resources] if documents else [],
        documents_total=documents.total if documents else None,
        sent=[display.sent_message(r) for r in sent.resources] if sent else [],
        sent_total=sent.total if sent else None,
        scheduled=[display.scheduled_message(r) for r in scheduled.resources]
        if scheduled else [],
        scheduled_total=scheduled.total if scheduled else None,
        versions=_versions(history)[:LIST_SIZE], versions_total=versions_total,
        merges=merges_of(provenance.resources, patient_id) if provenance else [],
    )
