"""FHIR batch: each entry on its own, in its own database transaction; one failing does not
stop the others, its response carries the status and OperationOutcome.
https://hl7.org/fhir/R4/http.html#transaction"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.errors import FhirError
from fhir_server.interactions.bundle_entries import (
    BundleContext,
    EntryResult,
    Targets,
    resolve,
    response_entry,
    run,
)
from fhir_server.interactions.bundle_plan import BundlePlan, PlannedEntry, at_entry
from storage.unit_of_work import unit_of_work

READS = frozenset({"read", "vread", "search"})


async def batch(plan: BundlePlan, context: BundleContext, engine: AsyncEngine) -> dict[str, Any]:
    """The batch-response Bundle, one entry per request entry, in the request's order."""
    results: dict[int, EntryResult] = {
        index: EntryResult(error.status, "OperationOutcome", error=error)
        for index, error in plan.errors.items()}
    for entry in plan.order():
        if entry.index in results:
            continue
        try:
            results[entry.index] = await _one(entry, context, engine)
        except FhirError as error:
            failed = at_entry(error, entry.index, entry.full_url)
            results[entry.index] = EntryResult(failed.status, "OperationOutcome", error=failed)
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "batch-response",
            "entry": [response_entry(results[index], context)
                      for index in range(len(plan.entries))]}


async def _one(entry: PlannedEntry, context: BundleContext, engine: AsyncEngine) -> EntryResult:
    """Entries of a batch do not refer to each other: only conditional references resolve."""
    targets = Targets({})
    if entry.action in READS:
        return await run(entry, context, targets)
    async with unit_of_work(engine):
        await resolve(entry, context, targets, new_id=str(uuid.uuid4()))
        return await run(entry, context, targets)
