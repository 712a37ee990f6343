"""One planned Bundle entry carried out: its conditions resolved (ifNoneExist, conditional
update/patch/delete, conditional references), its interaction run over the type's repository,
and its ``Bundle.entry.response`` built. Knows nothing of HTTP or of transactions: the caller
decides what runs in one database transaction. https://hl7.org/fhir/R4/http.html#trules"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import orjson

from fhir_server.errors import (
    FhirError,
    InvalidRequest,
    PreconditionFailed,
    informational_outcome,
    operation_outcome,
)
from fhir_server.interactions import search as search_interaction
from fhir_server.interactions.bundle_plan import CONDITIONAL_REFERENCE, PlannedEntry
from fhir_server.interactions.conditional_targets import (
    delete_targets,
    patch_target,
    update_target,
)
from fhir_server.interactions.patch import apply_json_patch
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.interactions.update import check_body_id
from fhir_server.merging.references import reference_literals, replace_references
from fhir_server.search.query import parse_search
from fhir_server.validation.json_depth import check_depth
from fhir_server.validation.resource import validate_resource
from mappings.fhir_dates import format_instant
from mappings.search_backing import SearchParameter
from storage.stored import StoredResource
from storage.unit_of_work import serialize


@dataclass(frozen=True)
class BundleContext:
    """What entries run against: the served repositories and how to render results."""

    repositories: Mapping[str, ResourceRepository]
    search_registry: dict[str, dict[str, SearchParameter]]
    base_url: str
    page_size_default: int
    page_size_max: int
    prefer: str = "representation"


@dataclass
class EntryResult:
    """What an entry did: the status, the version it wrote or read (``stored``), or a body
    (a searchset), and whether the response names a location."""

    status: int
    resource_type: str
    stored: StoredResource | None = None
    body: dict[str, Any] | None = None
    location: bool = False
    error: FhirError | None = None
    is_read: bool = False
    """A read's resource is the answer, whatever ``Prefer: return`` asks of writes."""


@dataclass
class Targets:
    """What the conditions of the entries resolved to: existing ids for conditional creates,
    ids for conditional updates/deletes, and resolved conditional references."""

    aliases: dict[str, str]
    matched: dict[int, str] = field(default_factory=dict)
    deletes: dict[int, list[str]] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)

    def rewrite(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource with every bundle-local and conditional reference made ``Type/id``."""
        def replacement(literal: str) -> str | None:
            return self.aliases.get(literal) or self.references.get(literal)
        rewritten: dict[str, Any] = replace_references(resource, replacement)
        return rewritten


def _repository(context: BundleContext, resource_type: str) -> ResourceRepository:
    return context.repositories[resource_type]


async def _find(context: BundleContext, resource_type: str, query: str) -> list[str]:
    await serialize(f"{resource_type}?{query}")
    return await _repository(context, resource_type).find(query)


async def resolve(entry: PlannedEntry, context: BundleContext, targets: Targets,
                  *, new_id: str) -> None:
    """Settle the entry's conditions (inside the caller's transaction): which resource an
    ifNoneExist, a conditional update/patch/delete and each conditional reference name."""
    kind = entry.resource_type
    if entry.action == "create" and entry.if_none_exist is not None:
        matches = await _find(context, kind, entry.if_none_exist)
        if len(matches) > 1:
            raise PreconditionFailed(f"ifNoneExist '{entry.if_none_exist}' matches "
                                     f"{len(matches)} {kind} resources; it must match at most one")
        if matches:
            targets.matched[entry.index] = matches[0]
            _alias(entry, targets, matches[0])
    elif entry.action in ("update", "patch", "delete") and entry.resource_id is None:
        assert entry.query is not None
        matches = await _find(context, kind, entry.query)
        if entry.action == "delete":
            targets.deletes[entry.index] = delete_targets(kind, entry.query, matches)
            return
        if entry.action == "patch":
            entry.resource_id = patch_target(kind, entry.query, matches)
        else:
            entry.resource_id = update_target(kind, entry.query, matches,
                                              (entry.resource or {}).get("id"), new_id)
        _alias(entry, targets, entry.resource_id)
    if entry.resource is not None and entry.action != "patch":
        await resolve_conditional_references(entry.resource, context, targets)


def _alias(entry: PlannedEntry, targets: Targets, resource_id: str) -> None:
    if entry.full_url:
        targets.aliases[entry.full_url] = f"{entry.resource_type}/{resource_id}"


async def resolve_conditional_references(resource: dict[str, Any], context: BundleContext,
                                         targets: Targets) -> None:
    """Each ``Type?criteria`` reference to a served type must select exactly one resource
    here; one to a type this server does not host is kept as given (it lives in the EHR)."""
    for literal in reference_literals(resource):
        match = CONDITIONAL_REFERENCE.match(literal)
        if match is None or literal in targets.references:
            continue
        kind, query = match.groups()
        if kind not in context.repositories:
            continue  # a type the EHR keeps: the reference stays as given
        matches = await _find(context, kind, query)
        if len(matches) != 1:
            raise PreconditionFailed(f"Conditional reference '{literal[:120]}' matches "
                                     f"{len(matches)} resources; it must match exactly one")
        targets.references[literal] = f"{kind}/{matches[0]}"


async def run(entry: PlannedEntry, context: BundleContext, targets: Targets) -> EntryResult:
    """Carry out one entry whose conditions are resolved."""
    repository = _repository(context, entry.resource_type)
    kind = entry.resource_type
    if entry.action == "create":
        existing = targets.matched.get(entry.index)
        if existing is not None:
            return EntryResult(200, kind, stored=await repository.read(existing), location=True)
        assert entry.resource is not None
        stored = await repository.create(targets.rewrite(entry.resource),
                                         resource_id=entry.resource_id)
        return EntryResult(201, kind, stored=stored, location=True)
    if entry.action == "update":
        return await _update(entry, repository, targets)
    if entry.action == "patch":
        return await _patch(entry, repository)
    if entry.action == "delete":
        ids = targets.deletes.get(entry.index, [entry.resource_id] if entry.resource_id else [])
        for resource_id in ids:
            if entry.if_match is not None:
                _check_version(kind, resource_id, entry.if_match,
                               (await repository.read(resource_id)).version_id)
            await repository.delete(resource_id)
        return EntryResult(204, kind)
    if entry.action == "read":
        assert entry.resource_id is not None
        stored = await repository.read(entry.resource_id)
        if _not_modified(entry, stored):
            return EntryResult(304, kind, stored=stored)
        return EntryResult(200, kind, stored=await _with_data(repository, stored), is_read=True)
    if entry.action == "vread":
        assert entry.resource_id is not None and entry.version_id is not None
        stored = await repository.vread(entry.resource_id, entry.version_id)
        return EntryResult(200, kind, stored=await _with_data(repository, stored), is_read=True)
    return await _search(entry, repository, context)


async def _update(entry: PlannedEntry, repository: ResourceRepository,
                  targets: Targets) -> EntryResult:
    assert entry.resource is not None and entry.resource_id is not None
    resource = targets.rewrite(entry.resource)
    if entry.query is not None and "id" not in resource:
        resource["id"] = entry.resource_id
    check_body_id(resource, entry.resource_id, entry.resource_type)
    if entry.if_none_match == "*":
        try:
            await repository.read(entry.resource_id)
        except FhirError:
            pass
        else:
            raise PreconditionFailed(f"{entry.resource_type}/{entry.resource_id} exists "
                                     "(ifNoneMatch *)")
    stored, created = await repository.update(entry.resource_id, resource,
                                              if_match=entry.if_match)
    return EntryResult(201 if created else 200, entry.resource_type, stored=stored,
                       location=True)


async def _patch(entry: PlannedEntry, repository: ResourceRepository) -> EntryResult:
    assert entry.resource is not None and entry.resource_id is not None
    try:
        operations = orjson.loads(base64.b64decode(entry.resource["data"], validate=True))
    except (binascii.Error, ValueError):
        raise InvalidRequest("The PATCH entry's Binary.data is not base64 JSON") from None
    check_depth(operations)
    read = getattr(repository, "current_for_change", repository.read)  # patch needs u, not r
    current = await read(entry.resource_id)
    assert current.resource is not None
    if entry.if_match is not None:
        _check_version(entry.resource_type, entry.resource_id, entry.if_match,
                       current.version_id)
    patched = validate_resource(apply_json_patch(current.resource, operations),
                                entry.resource_type)
    check_body_id(patched, entry.resource_id, entry.resource_type)
    stored, _ = await repository.update(entry.resource_id, patched,
                                        if_match=current.version_id)
    return EntryResult(200, entry.resource_type, stored=stored, location=True)


async def _search(entry: PlannedEntry, repository: ResourceRepository,
                  context: BundleContext) -> EntryResult:
    pairs = parse_qsl(entry.query or "", keep_blank_values=True)
    parsed = parse_search(pairs, context.search_registry, resource_type=entry.resource_type,
                          strict=False, default_count=context.page_size_default,
                          max_count=context.page_size_max, base_url=context.base_url)
    result = await search_interaction.search(repository, parsed, pairs=pairs,
                                             base_url=context.base_url)
    return EntryResult(200, "Bundle", body=result.body)


async def _with_data(repository: ResourceRepository, stored: StoredResource) -> StoredResource:
    """A Binary read in a Bundle carries its bytes as base64 ``data``, like a JSON read."""
    with_data = getattr(repository, "with_data", None)
    if with_data is None or stored.resource is None:
        return stored
    return StoredResource(stored.resource_id, stored.version_id, stored.last_updated,
                          await with_data(stored))


def _check_version(kind: str, resource_id: str, expected: int, current: int) -> None:
    if expected != current:
        raise PreconditionFailed(f"ifMatch version {expected} does not match the current "
                                 f"version {current} of {kind}/{resource_id}")


def _not_modified(entry: PlannedEntry, stored: StoredResource) -> bool:
    if entry.if_none_match is not None:
        wanted = entry.if_none_match.removeprefix("W/").strip('"')
        return wanted in ("*", str(stored.version_id))
    if entry.if_modified_since is not None:
        return stored.last_updated.replace(microsecond=0) <= entry.if_modified_since
    return False


def response_entry(result: EntryResult, context: BundleContext) -> dict[str, Any]:
    """``Bundle.entry`` of a batch-response / transaction-response for one result."""
    response: dict[str, Any] = {"status": f"{result.status} {HTTPStatus(result.status).phrase}"}
    entry: dict[str, Any] = {}
    if result.error is not None:
        response["outcome"] = operation_outcome(result.error)
        return {"response": response}
    stored = result.stored
    if stored is not None:
        if result.location:
            response["location"] = (f"{result.resource_type}/{stored.resource_id}"
                                     f"/_history/{stored.version_id}")
        response["etag"] = f'W/"{stored.version_id}"'
        response["lastModified"] = format_instant(stored.last_updated)
    body = result.body
    if body is None and stored is not None and stored.resource is not None \
            and result.status != 304:
        if result.is_read or context.prefer == "representation":
            body = stored.resource
        elif context.prefer == "OperationOutcome":
            response["outcome"] = informational_outcome(
                f"{result.resource_type}/{stored.resource_id} stored, status {result.status}")
    if body is not None:
        if stored is not None:
            entry["fullUrl"] = f"{context.base_url}/{result.resource_type}/{stored.resource_id}"
        entry["resource"] = body
    entry["response"] = response
    return entry
