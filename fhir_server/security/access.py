"""The one door every handler (FHIR routes, Bundles, operations, the console) goes through to
reach the data: ``repositories_for`` gives the request's repositories, checked against the
caller's scopes and audited; ``authorize_operation`` and ``audit_operation`` do the same for
operations that are not plain interactions ($match, $merge, $unmerge, ...)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from starlette.requests import Request

from fhir_server.http.request_base import base_url, services_of
from fhir_server.interactions.repository import CreatesMany, ResourceRepository
from fhir_server.security.audit import SUCCESS, Access, failure_of, outcome_of
from fhir_server.security.auditor import Auditor
from fhir_server.security.guarded import GuardedManyRepository, GuardedRepository
from fhir_server.security.policy import AccessPolicy
from fhir_server.security.scopes import Reach, ScopeSet
from fhir_server.security.ssn_mask import mask_everywhere
from fhir_server.security.tokens import ANONYMOUS, Principal
from storage.stored import now

T = TypeVar("T")
NOBODY = Principal(scopes=ScopeSet())
"""The caller of a protected path that no token was checked for (never reached in practice:
the authentication middleware stops it first)."""

OPERATIONS: dict[str, tuple[str, str]] = {
    "Patient/$match": ("Patient", "$match"),
    "Patient/$merge": ("Patient", "$merge"),
    "Patient/$unmerge": ("Patient", "$merge"),
    "Patient/$demographics": ("Patient", "s"),
    "Communication/$stats": ("Communication", "s"),
    "DocumentReference/$stats": ("DocumentReference", "s"),
    "$export": ("*", "s"),
    "Patient/$export": ("*", "s"),
    "$export-poll-status": ("*", "s"),
    "$export-file": ("*", "s"),
    "$export-cancel": ("*", "s"),
}
"""Each operation's (resource type, permission). $match and $merge have their own scopes
(``user/Patient.$match``, ``user/Patient.$merge``); statistics need search on the type. ``*``:
the permission on each of the types the operation reaches (a Bulk Data export, its status,
files and cancellation: search on every type exported)."""


def principal_of(request: Request) -> Principal:
    """Who is asking: set by the authentication middleware; anonymous with every right when
    no authorisation is configured."""
    principal = request.scope.get("state", {}).get("principal")
    if isinstance(principal, Principal):
        return principal
    return NOBODY if services_of(request).verifier is not None else ANONYMOUS


def policy_for(request: Request) -> AccessPolicy:
    return AccessPolicy(principal_of(request), base_url(request))


def auditor_for(request: Request) -> Auditor:
    """This request's audit writer (one per request)."""
    state = request.scope.setdefault("state", {})
    auditor = state.get("auditor")
    if isinstance(auditor, Auditor):
        return auditor
    services = services_of(request)
    query = request.scope.get("query_string", b"").decode("latin-1")
    auditor = Auditor(services.audit_trail, services.engine, principal_of(request),
                      address=request.client.host if request.client else None,
                      query=query, clock=now)
    state["auditor"] = auditor
    return auditor


def repositories_for(request: Request) -> Mapping[str, ResourceRepository]:
    """The served repositories as this request's caller may use them."""
    state = request.scope.setdefault("state", {})
    cached = state.get("repositories")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    guarded = GuardedRepositories(services_of(request).repositories, policy_for(request),
                                  auditor_for(request))
    state["repositories"] = guarded
    return guarded


class GuardedRepositories(Mapping[str, ResourceRepository]):
    """The served repositories, each wrapped for one caller when first asked for (a request
    mostly uses one of them)."""

    def __init__(self, served: Mapping[str, ResourceRepository], policy: AccessPolicy,
                 auditor: Auditor) -> None:
        self._served = served
        self._policy = policy
        self._auditor = auditor
        self._wrapped: dict[str, ResourceRepository] = {}

    def __getitem__(self, name: str) -> ResourceRepository:
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            repository = self._served[name]
            wrapped = self._wrapped[name] = _wrapper(repository)(repository, self._policy,
                                                                 self._auditor)
        return wrapped

    def __iter__(self) -> Iterator[str]:
        return iter(self._served)

    def __len__(self) -> int:
        return len(self._served)


@functools.cache
def _wrapper_of(kind: type) -> type[GuardedRepository]:
    # a runtime Protocol check walks the protocol's attributes: once per class, not per request
    return GuardedManyRepository if issubclass(kind, CreatesMany) else GuardedRepository


def _wrapper(repository: ResourceRepository) -> type[GuardedRepository]:
    return _wrapper_of(type(repository))


def guarded(request: Request, resource_type: str) -> GuardedRepository:
    """One type's repository as this request's caller may use it."""
    repository = repositories_for(request)[resource_type]
    assert isinstance(repository, GuardedRepository)
    return repository


def authorize_operation(request: Request, operation: str,
                        patient_ids: Sequence[str] = (), *, types: Sequence[str] = ()) -> None:
    """Raise Forbidden unless the caller may run ``operation`` (``Patient/$merge``, ...) (on
    each of ``types`` for the ``*`` operations); the operations here act across patients, so
    a patient/ scope never suffices."""
    resource_type, permission = OPERATIONS[operation]
    reached = tuple(types) if resource_type == "*" else (resource_type,)
    if not reached:
        raise ValueError(f"{operation} needs the types it reaches")
    policy = policy_for(request)
    for kind in reached:
        policy.require(kind, permission, whole=True)


async def audit_operation(request: Request, operation: str, *, entities: Sequence[str],
                          succeeded: bool, detail: str | None = None) -> None:
    """Record that ``operation`` ran on ``entities`` (``Type/id`` references)."""
    resource_type, _, name = operation.rpartition("/")
    patients = frozenset(entity.split("/", 1)[1] for entity in entities
                         if entity.startswith("Patient/"))
    await auditor_for(request).record(Access(
        subtype=name, resource_type=resource_type or None, entities=tuple(entities),
        patients=patients, outcome=SUCCESS if succeeded else outcome_of(400), detail=detail))


async def run_operation(request: Request, operation: str, work: Callable[[], Awaitable[T]], *,
                        entities: Callable[[T], Sequence[str]],
                        asked: Sequence[str] = (), writes: bool = False) -> T:
    """Authorise ``operation``, run it and audit it: in the transaction of its writes when
    ``writes``; a refusal or failure is audited too (``asked``: the entities it named)."""
    auditor = auditor_for(request)
    try:
        authorize_operation(request, operation)
        async with auditor.atomic() if writes else _nothing():
            result = await work()
            await audit_operation(request, operation, entities=entities(result), succeeded=True)
        if principal_of(request).scopes.reach("Patient", "$reveal-ssn") is Reach.NONE:
            masked: T = mask_everywhere(result)
            return masked
        return result
    except Exception as error:
        outcome, detail = failure_of(error)
        resource_type, _, name = operation.partition("/")
        await auditor.record_failure(Access(subtype=name, resource_type=resource_type,
                                            entities=tuple(asked), outcome=outcome,
                                            detail=detail))
        raise


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
