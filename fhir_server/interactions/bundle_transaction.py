"""FHIR transaction: every entry in one database transaction, all or nothing. Conditions and
conditional references are resolved inside it (so what they found cannot change before the
writes), references rewritten, then the entries run in processing order; the first entry to
fail rolls everything back and is named in the error. https://hl7.org/fhir/R4/http.html#transaction"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.errors import FhirError, InvalidRequest, Issue
from fhir_server.interactions.bundle_entries import (
    BundleContext,
    EntryResult,
    Targets,
    resolve,
    response_entry,
    run,
)
from fhir_server.interactions.bundle_plan import (
    CONDITIONAL_REFERENCE,
    BundlePlan,
    PlannedEntry,
    at_entry,
)
from fhir_server.interactions.repository import CreatesMany, ItemFailed
from fhir_server.merging.references import reference_literals
from storage.unit_of_work import serialize, unit_of_work


def refuse_unsupported(plan: BundlePlan) -> None:
    """A transaction naming types this server does not serve is refused whole, listing them."""
    if not plan.unsupported:
        return
    listed = ", ".join(f"{kind} ({len(indexes)} entries)"
                       for kind, indexes in sorted(plan.unsupported.items()))
    raise InvalidRequest(
        f"The transaction names resource types this server does not serve: {listed}; "
        "nothing was written",
        issues=[Issue(f"Resource type {kind} is not served here (Bundle.entry"
                      f"{indexes[:20]})", code="not-supported",
                      expression=tuple(f"Bundle.entry[{index}]" for index in indexes[:20]))
                for kind, indexes in sorted(plan.unsupported.items())])


async def transaction(plan: BundlePlan, context: BundleContext,
                      engine: AsyncEngine) -> dict[str, Any]:
    """The transaction-response Bundle; the first failing entry's error otherwise."""
    refuse_unsupported(plan)
    if plan.errors:
        raise plan.errors[min(plan.errors)]
    ordered = plan.order()
    results: dict[int, EntryResult] = {}
    targets = Targets(dict(plan.aliases))
    async with unit_of_work(engine):
        for key in sorted(_condition_keys(ordered, context)):
            await serialize(key)  # all at once, in one order: no two transactions deadlock
        for entry in ordered:
            await _step(entry, resolve(entry, context, targets, new_id=str(uuid.uuid4())))
        for entry in ordered:
            if entry.index in results:
                continue
            many = _creates_many(entry, ordered, context, targets)
            if many:
                results.update(await _create_many(many, context, targets))
                continue
            results[entry.index] = await _step(entry, run(entry, context, targets))
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "transaction-response",
            "entry": [response_entry(results[entry.index], context)
                      for entry in plan.entries if entry is not None]}


T = TypeVar("T")


async def _step(entry: PlannedEntry, step: Awaitable[T]) -> T:
    try:
        return await step
    except FhirError as error:
        raise at_entry(error, entry.index, entry.full_url) from error


def _condition_keys(entries: list[PlannedEntry], context: BundleContext) -> set[str]:
    """The searches the entries' conditions run (what ``resolve`` serializes on)."""
    keys: set[str] = set()
    for entry in entries:
        if entry.action == "create" and entry.if_none_exist is not None:
            keys.add(f"{entry.resource_type}?{entry.if_none_exist}")
        elif entry.action in ("update", "patch", "delete") and entry.resource_id is None:
            keys.add(f"{entry.resource_type}?{entry.query}")
        if entry.resource is not None and entry.action != "patch":
            for literal in reference_literals(entry.resource):
                match = CONDITIONAL_REFERENCE.match(literal)
                if match and match.group(1) in context.repositories:
                    keys.add(literal)
    return keys


def _creates_many(entry: PlannedEntry, ordered: list[PlannedEntry], context: BundleContext,
                  targets: Targets) -> list[PlannedEntry]:
    """The plain creates of ``entry``'s type, written together when the first of them comes
    up (a type that creates many at once refers to no other type a Bundle creates: Patient)."""
    def plain(candidate: PlannedEntry) -> bool:
        return (candidate.action == "create" and candidate.resource_type == entry.resource_type
                and candidate.index not in targets.matched)

    if not plain(entry) or not isinstance(context.repositories[entry.resource_type],
                                          CreatesMany):
        return []
    return [candidate for candidate in ordered if plain(candidate)]


async def _create_many(entries: list[PlannedEntry], context: BundleContext,
                       targets: Targets) -> dict[int, EntryResult]:
    repository = context.repositories[entries[0].resource_type]
    assert isinstance(repository, CreatesMany)
    items = []
    for entry in entries:
        assert entry.resource is not None and entry.resource_id is not None
        items.append((entry.resource_id, targets.rewrite(entry.resource)))
    try:
        stored = await repository.create_many(items)
    except ItemFailed as failed:
        entry = entries[failed.position]
        raise at_entry(failed.error, entry.index, entry.full_url) from failed.error
    except FhirError as error:
        raise at_entry(error, entries[0].index, entries[0].full_url) from error
    return {entry.index: EntryResult(201, entry.resource_type, stored=version, location=True)
            for entry, version in zip(entries, stored, strict=True)}
