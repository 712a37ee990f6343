"""A repository as one caller may use it: every call checked against the caller's scopes and
compartment (AccessPolicy) and written to the audit trail (Auditor). Routes, Bundles and the
console all get their repositories through this wrapper, so no path skips either."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from fhir_server.errors import FhirError, Forbidden
from fhir_server.interactions.repository import ItemFailed, ResourceRepository
from fhir_server.search.query import SearchRequest
from fhir_server.security.audit import MINOR_FAILURE, Access, failure_of
from fhir_server.security.auditor import Auditor
from fhir_server.security.compartment import compartment_clause, patients_of
from fhir_server.security.policy import AccessPolicy
from fhir_server.security.scopes import Reach
from fhir_server.security.ssn_mask import is_masked, mask_patient, restore_masked
from mappings.search_backing import SearchParameter
from storage.stored import SearchResults, StoredResource

T = TypeVar("T")
PASS_THROUGH = frozenset({"with_data"})
"""Attributes of the wrapped repository that give no access of their own."""


class GuardedRepository:
    def __init__(self, inner: ResourceRepository, policy: AccessPolicy,
                 auditor: Auditor) -> None:
        self._inner = inner
        self._policy = policy
        self._auditor = auditor
        self._reveals_ssn = policy.principal.scopes.reach("Patient", "$reveal-ssn") \
            is not Reach.NONE

    def __getattr__(self, name: str) -> Any:
        if name in PASS_THROUGH:
            return getattr(self._inner, name)
        raise AttributeError(name)

    @property
    def resource_type(self) -> str:
        return self._inner.resource_type

    @property
    def search_parameters(self) -> dict[str, SearchParameter]:
        return self._inner.search_parameters

    def _shown(self, stored: StoredResource) -> StoredResource:
        """``stored`` as this caller sees it (SSN masked unless they may see it)."""
        if stored.resource is None:
            return stored
        shown = self._shown_resource(stored.resource)
        return stored if shown is stored.resource else dataclasses.replace(stored,
                                                                           resource=shown)

    def _shown_resource(self, resource: dict[str, Any]) -> dict[str, Any]:
        if self._reveals_ssn or resource.get("resourceType") != "Patient":
            return resource
        return mask_patient(resource)

    async def _unmasked(self, resource: dict[str, Any],
                        resource_id: str | None) -> dict[str, Any]:
        """An incoming Patient with masked SSNs put back to the stored ones."""
        if resource.get("resourceType") != "Patient" or not any(
                is_masked(item) for item in resource.get("identifier") or []):
            return resource
        stored = None
        if resource_id is not None:
            try:
                stored = (await self._inner.read(resource_id)).resource
            except FhirError:
                stored = None
        return restore_masked(resource, stored)

    def _name(self, resource_id: str) -> str:
        return f"{self.resource_type}/{resource_id}"

    def _patients(self, *resources: dict[str, Any] | None) -> frozenset[str]:
        found: set[str] = set()
        for resource in resources:
            if resource is not None:
                found |= patients_of(resource, self._policy.base_url)
        return frozenset(found)

    async def _audited(self, subtype: str, entities: tuple[str, ...],
                       work: Callable[[], Awaitable[T]],
                       describe: Callable[[T], Access] | None = None, *,
                       atomic: bool = False, query: str | None = None) -> T:
        """Run ``work`` and record it (in its transaction when ``atomic``); a refusal or
        failure is recorded too, then raised."""
        try:
            if atomic:
                async with self._auditor.atomic():
                    result = await work()
                    await self._auditor.record(self._describe(subtype, entities, result,
                                                              describe, query))
                return result
            result = await work()
        except Exception as error:
            outcome, detail = failure_of(error)
            await self._auditor.record_failure(Access(
                subtype=subtype, resource_type=self.resource_type, entities=entities,
                outcome=outcome, detail=detail, query=query))
            raise
        await self._auditor.record(self._describe(subtype, entities, result, describe, query))
        return result

    def _describe(self, subtype: str, entities: tuple[str, ...], result: T,
                  describe: Callable[[T], Access] | None, query: str | None) -> Access:
        if describe is not None:
            return describe(result)
        return Access(subtype=subtype, resource_type=self.resource_type, entities=entities,
                      query=query)

    def _stored_access(self, subtype: str, stored: StoredResource | None) -> Access:
        if stored is None:
            return Access(subtype=subtype, resource_type=self.resource_type)
        return Access(subtype=subtype, resource_type=self.resource_type,
                      entities=(self._name(stored.resource_id),),
                      patients=self._patients(stored.resource))

    # ------------------------------------------------------------------- reads

    async def read(self, resource_id: str) -> StoredResource:
        return await self._read("read", resource_id, lambda: self._inner.read(resource_id))

    async def vread(self, resource_id: str, version_id: int) -> StoredResource:
        return await self._read("vread", resource_id,
                                lambda: self._inner.vread(resource_id, version_id))

    async def _read(self, subtype: str, resource_id: str,
                    fetch: Callable[[], Awaitable[StoredResource]]) -> StoredResource:
        name = self._name(resource_id)

        async def work() -> StoredResource:
            reach = self._policy.require(self.resource_type, "r")
            stored = await fetch()
            self._policy.check_visible(reach, stored.resource, name)
            return self._shown(stored)

        return await self._audited(subtype, (name,), work,
                                   lambda stored: self._stored_access(subtype, stored))

    async def history(self, *, resource_id: str | None, since: datetime | None, count: int,
                      offset: int, at: tuple[datetime, datetime] | None = None
                      ) -> tuple[int, list[StoredResource]]:
        subtype = "history-type" if resource_id is None else "history-instance"
        entities: tuple[str, ...] = () if resource_id is None else (self._name(resource_id),)

        async def work() -> tuple[int, list[StoredResource]]:
            if resource_id is None:
                self._policy.require(self.resource_type, "s", whole=True)
            else:
                reach = self._policy.require(self.resource_type, "r")
                if reach is Reach.COMPARTMENT:
                    current = await self._inner.read(resource_id)
                    self._policy.check_visible(reach, current.resource,
                                               self._name(resource_id))
            total, items = await self._inner.history(resource_id=resource_id, since=since,
                                                     count=count, offset=offset, at=at)
            return total, [self._shown(item) for item in items]

        def describe(page: tuple[int, list[StoredResource]]) -> Access:
            return Access(subtype=subtype, resource_type=self.resource_type,
                          entities=tuple(dict.fromkeys(
                              self._name(item.resource_id) for item in page[1])) or entities,
                          patients=self._patients(*(item.resource for item in page[1])))

        return await self._audited(subtype, entities, work, describe)

    async def search(self, request: SearchRequest) -> SearchResults:
        query = self._auditor.query

        async def work() -> SearchResults:
            reach = self._policy.require(self.resource_type, "s")
            for clause in request.clauses:
                self._require_chain(clause)
            if reach is Reach.COMPARTMENT:
                assert self._policy.principal.patient is not None
                guarded = dataclasses.replace(request, clauses=[
                    *request.clauses,
                    compartment_clause(self.resource_type, self._policy.principal.patient)])
            else:
                guarded = request
            page = await self._inner.search(guarded)
            included = [self._shown_resource(resource) for resource in page.included
                        if self._policy.may_read(resource)]
            return SearchResults([self._shown_resource(item) for item in page.resources],
                                 page.next_token, page.previous_token, page.total, included)

        def describe(page: SearchResults) -> Access:
            shown = [*page.resources, *page.included]
            return Access(subtype="search-type", resource_type=self.resource_type,
                          entities=tuple(f"{item['resourceType']}/{item['id']}"
                                         for item in shown),
                          patients=self._patients(*shown), query=query)

        return await self._audited("search-type", (), work, describe, query=query)

    def _require_chain(self, clause: Any) -> None:
        """Chained and reverse-chained parameters search other types: the token must be
        allowed to search those too."""
        inner = getattr(clause, "chain", None)
        if inner is None:
            return
        reverse = getattr(clause, "reverse", None)
        other = reverse[0] if reverse is not None else clause.target_type
        if other is not None:
            self._policy.require(other, "s", whole=True)
        self._require_chain(inner)

    async def find(self, query: str) -> list[str]:
        reach = self._policy.require(self.resource_type, "s")
        found = await self._inner.find(query)
        if reach is Reach.COMPARTMENT:
            visible = []
            for resource_id in found:
                stored = await self._inner.read(resource_id)
                if stored.resource is not None and self._policy.member(stored.resource):
                    visible.append(resource_id)
            return visible
        return found

    async def audited_read(self, subtype: str, resource_id: str,
                           fetch: Callable[[], Awaitable[T]],
                           resource_of: Callable[[T], StoredResource]) -> T:
        """A read outside the repository protocol (a Binary's raw bytes), checked and
        audited like ``read``."""
        name = self._name(resource_id)

        async def work() -> T:
            reach = self._policy.require(self.resource_type, "r")
            found = await fetch()
            self._policy.check_visible(reach, resource_of(found).resource, name)
            return found

        return await self._audited(
            subtype, (name,), work,
            lambda found: self._stored_access(subtype, resource_of(found)))

    async def authorize_write(self, subtype: str, proposed: dict[str, Any], *,
                              resource_id: str | None = None) -> None:
        """Check a write outside the protocol before its bytes are received: the scope
        (create, or update when ``resource_id`` is given) and the compartment; a refusal
        is audited."""
        name = self._name(resource_id) if resource_id else f"The new {self.resource_type}"

        async def work() -> None:
            reach = self._policy.require(self.resource_type, "u" if resource_id else "c")
            self._policy.check_writable(reach, proposed, name)
            if resource_id and reach is Reach.COMPARTMENT:
                try:
                    current = await self._inner.read(resource_id)
                except FhirError:
                    return
                if current.resource is not None:
                    self._policy.check_writable(reach, current.resource, name)

        try:
            await work()
        except FhirError as error:
            await self._auditor.record_failure(Access(
                subtype=subtype, resource_type=self.resource_type,
                entities=(self._name(resource_id),) if resource_id else (),
                outcome=MINOR_FAILURE, detail=error.message))
            raise

    async def audited_write(self, subtype: str, work: Callable[[], Awaitable[T]],
                            stored_of: Callable[[T], StoredResource]) -> T:
        """An authorised write outside the protocol, audited in its transaction."""
        return await self._audited(subtype, (), work,
                                   lambda result: self._stored_access(subtype,
                                                                      stored_of(result)),
                                   atomic=True)

    async def current_for_change(self, resource_id: str) -> StoredResource:
        """The current version as the first step of a patch: it needs the update permission
        (SMART's ``u`` covers patch), not read, and is not audited apart (the update is).
        Unmasked: only the patched result leaves the server, through the masking update."""
        reach = self._policy.require(self.resource_type, "u")
        current = await self._inner.read(resource_id)
        self._policy.check_visible(reach, current.resource, self._name(resource_id))
        return current

    # ------------------------------------------------------------------ writes

    async def create(self, resource: dict[str, Any], *,
                     resource_id: str | None = None) -> StoredResource:
        async def work() -> StoredResource:
            reach = self._policy.require(self.resource_type, "c")
            self._policy.check_writable(reach, resource, f"The new {self.resource_type}")
            return self._shown(await self._inner.create(await self._unmasked(resource, None),
                                                        resource_id=resource_id))

        return await self._audited("create", (), work,
                                   lambda stored: self._stored_access("create", stored),
                                   atomic=True)

    async def update(self, resource_id: str, resource: dict[str, Any], *,
                     if_match: int | None) -> tuple[StoredResource, bool]:
        name = self._name(resource_id)

        async def work() -> tuple[StoredResource, bool]:
            reach = self._policy.require(self.resource_type, "u")
            if reach is Reach.COMPARTMENT:
                self._policy.check_writable(reach, resource, name)
                try:
                    current = await self._inner.read(resource_id)
                except FhirError:
                    current = None
                if current is not None and current.resource is not None:
                    self._policy.check_writable(reach, current.resource, name)
            stored, created = await self._inner.update(
                resource_id, await self._unmasked(resource, resource_id), if_match=if_match)
            return self._shown(stored), created

        return await self._audited(
            "update", (name,), work,
            lambda result: self._stored_access("create" if result[1] else "update",
                                               result[0]), atomic=True)

    async def delete(self, resource_id: str) -> StoredResource | None:
        name = self._name(resource_id)

        async def work() -> StoredResource | None:
            reach = self._policy.require(self.resource_type, "d")
            if reach is Reach.COMPARTMENT:
                current = await self._inner.read(resource_id)
                if current.resource is not None:
                    self._policy.check_writable(reach, current.resource, name)
            return await self._inner.delete(resource_id)

        def describe(stored: StoredResource | None) -> Access:
            return Access(subtype="delete", resource_type=self.resource_type, entities=(name,))

        return await self._audited("delete", (name,), work, describe, atomic=True)


class GuardedManyRepository(GuardedRepository):
    """The guarded form of a repository that writes many new resources at once."""

    async def create_many(self, items: list[tuple[str, dict[str, Any]]]) -> list[StoredResource]:
        reach = self._policy.require(self.resource_type, "c")
        for position, (_, resource) in enumerate(items):
            try:
                self._policy.check_writable(reach, resource, f"The new {self.resource_type}")
            except Forbidden as error:
                raise ItemFailed(position, error) from None
        inner: Any = self._inner
        stored: list[StoredResource] = await inner.create_many(items)
        await self._auditor.record_many([self._stored_access("create", item) for item in stored])
        return [self._shown(item) for item in stored]
