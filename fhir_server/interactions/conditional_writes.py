"""Conditional create, update, patch and delete over REST (``POST`` with If-None-Exist,
``PUT``/``PATCH``/``DELETE [type]?criteria``). https://hl7.org/fhir/R4/http.html#cond-update

Each runs its search and its write in one transaction, holding a lock on its criteria
(PostgreSQL advisory lock; SQLite's one write lock): two requests with the same criteria sent
at once cannot both find nothing and both create, nor update a resource the other just made."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.interactions import create, patch, update
from fhir_server.interactions.conditional_targets import (
    delete_targets,
    patch_target,
    update_target,
)
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.interactions.result import InteractionResult
from storage.unit_of_work import serialize, unit_of_work


def _lock_key(repository: ResourceRepository, query: str) -> str:
    """The key Bundle entries lock on for the same criteria (``bundle_entries._find``)."""
    return f"{repository.resource_type}?{query}"


async def conditional_create(engine: AsyncEngine, repository: ResourceRepository,
                             resource: dict[str, Any], query: str) -> InteractionResult:
    """201 with the new resource, 200 with the one match, 412 on several."""
    async with unit_of_work(engine):
        await serialize(_lock_key(repository, query))
        return await create.create(repository, resource, if_none_exist=query)


async def conditional_update(engine: AsyncEngine, repository: ResourceRepository,
                             resource: dict[str, Any], query: str, *,
                             if_match: int | None) -> InteractionResult:
    """The one match updated (200); none: created (201) under the body's id or a new one;
    several: 412; a body id other than the match's: 400."""
    async with unit_of_work(engine):
        await serialize(_lock_key(repository, query))
        matches = await repository.find(query)
        resource_id = update_target(repository.resource_type, query, matches,
                                    resource.get("id"), str(uuid.uuid4()))
        if "id" not in resource:
            resource = {**resource, "id": resource_id}
        return await update.update(repository, resource_id, resource, if_match=if_match)


async def conditional_patch(engine: AsyncEngine, repository: ResourceRepository,
                            operations: Any, query: str, *, if_match: int | None,
                            validate: Callable[[dict[str, Any]], dict[str, Any]]
                            ) -> InteractionResult:
    """The one match patched (200); none or several: 412."""
    async with unit_of_work(engine):
        await serialize(_lock_key(repository, query))
        resource_id = patch_target(repository.resource_type, query,
                                   await repository.find(query))
        return await patch.patch(repository, resource_id, operations, if_match=if_match,
                                 validate=validate)


async def conditional_delete(engine: AsyncEngine, repository: ResourceRepository,
                             query: str) -> InteractionResult:
    """204 once the one match is deleted, or when nothing matches; several: 412."""
    async with unit_of_work(engine):
        await serialize(_lock_key(repository, query))
        for resource_id in delete_targets(repository.resource_type, query,
                                          await repository.find(query)):
            await repository.delete(resource_id)
    return InteractionResult(204, repository.resource_type)
