"""A batch or transaction Bundle turned into a plan, with no I/O: each entry parsed into the
interaction it asks for, ids assigned up front to the resources it creates (so references to
them are rewritten before anything is written), the ``fullUrl`` -> ``Type/id`` map, and the
processing order (DELETE, POST, PUT/PATCH, GET/HEAD; creates ordered so a resource comes
after the ones it refers to). https://hl7.org/fhir/R4/http.html#transaction"""

from __future__ import annotations

import heapq
import re
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fhir_server.errors import FhirError, InvalidRequest, Issue, PayloadTooLarge
from fhir_server.http.preconditions import if_match_version
from fhir_server.merging.references import reference_literals
from fhir_server.validation.resource import validate_resource

KINDS = ("batch", "transaction")
METHOD_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_VERSION = re.compile(r"^[0-9]{1,12}$")
CONDITIONAL_REFERENCE = re.compile(r"^([A-Z][A-Za-z]{1,63})\?(.+)$")


@dataclass
class PlannedEntry:
    """One entry's request. ``action``: create, update, patch, delete, read, vread, search;
    ``query`` is the search of a conditional update/patch/delete or of a search."""

    index: int
    full_url: str | None
    method: str
    url: str
    action: str
    resource_type: str
    resource_id: str | None = None
    version_id: int | None = None
    query: str | None = None
    resource: dict[str, Any] | None = None
    if_none_exist: str | None = None
    if_match: int | None = None
    if_none_match: str | None = None
    if_modified_since: datetime | None = None

    @property
    def where(self) -> str:
        """``Bundle.entry[3] (fullUrl urn:uuid:...)``, the way errors name the entry."""
        name = f"Bundle.entry[{self.index}]"
        return f"{name} (fullUrl {self.full_url})" if self.full_url else name


@dataclass
class BundlePlan:
    kind: str
    entries: list[PlannedEntry | None]
    """In Bundle order; None where the entry could not be parsed (its error in ``errors``)."""
    errors: dict[int, FhirError] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    """fullUrl (and the ``Type/id`` it names) -> ``Type/id`` here."""
    unsupported: dict[str, list[int]] = field(default_factory=dict)

    def order(self) -> list[PlannedEntry]:
        """The parsed entries in processing order."""
        planned = [entry for entry in self.entries if entry is not None]
        creates = _dependency_order([e for e in planned if e.method == "POST"], self.aliases)
        rank = {id(entry): position for position, entry in enumerate(creates)}
        return sorted(planned, key=lambda e: (METHOD_ORDER[e.method], rank.get(id(e), 0),
                                               e.index))


def at_entry(error: FhirError, index: int, full_url: str | None) -> FhirError:
    """``error`` with the entry's index and fullUrl in front of each message and expression."""
    where = f"Bundle.entry[{index}]" + (f" (fullUrl {full_url})" if full_url else "")
    issues = [Issue(f"{where}: {issue.diagnostics}", code=issue.code or error.issue_code,
                    severity=issue.severity,
                    expression=tuple(_entry_expression(index, path) for path in issue.expression)
                    or (f"Bundle.entry[{index}]",))
              for issue in error.all_issues()]
    return replace(error, message=f"{where}: {error.message}", issues=issues)


def _entry_expression(index: int, path: str) -> str:
    head, _, rest = path.partition(".")
    if _TYPE.match(head.split("[")[0]) and rest:
        return f"Bundle.entry[{index}].resource.{rest}"
    return f"Bundle.entry[{index}].{path}"


def plan_bundle(bundle: Any, *, served: Collection[str], base_url: str, max_entries: int,
                new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> BundlePlan:
    """The plan of a batch or transaction Bundle; InvalidRequest when it is neither, or not a
    Bundle; PayloadTooLarge over ``max_entries``. Entry errors are kept per entry."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidRequest("POST to the base expects a Bundle of type batch or transaction")
    kind = bundle.get("type")
    if kind not in KINDS:
        raise InvalidRequest(f"Bundle.type '{str(kind)[:40]}' cannot be processed here: "
                             "POST a Bundle of type batch or transaction",
                             issues=[Issue(f"Bundle.type '{str(kind)[:40]}' is not batch or "
                                           "transaction", code="invalid",
                                           expression=("Bundle.type",))])
    raw_entries = bundle.get("entry", [])
    if not isinstance(raw_entries, list):
        raise InvalidRequest("Bundle.entry must be an array",
                             issues=[Issue("Bundle.entry must be an array", code="structure",
                                           expression=("Bundle.entry",))])
    if len(raw_entries) > max_entries:
        raise PayloadTooLarge(f"The Bundle has {len(raw_entries)} entries; this server takes "
                              f"at most {max_entries} (FHIR_BUNDLE_MAX_ENTRIES)")
    plan = BundlePlan(kind, [])
    for index, raw in enumerate(raw_entries):
        full_url = raw.get("fullUrl") if isinstance(raw, dict) else None
        full_url = full_url if isinstance(full_url, str) else None
        try:
            entry = parse_entry(raw, index, base_url=base_url, served=served)
        except FhirError as error:
            plan.entries.append(None)
            plan.errors[index] = at_entry(error, index, full_url)
            if isinstance(error, _Unsupported):
                plan.unsupported.setdefault(error.resource_type, []).append(index)
            continue
        plan.entries.append(entry)
    _assign_ids(plan, base_url, new_id)
    if kind == "transaction":
        _check_duplicates(plan)
    return plan


@dataclass
class _Unsupported(FhirError):
    resource_type: str = ""
    status = 404
    issue_code = "not-supported"


def parse_entry(raw: Any, index: int, *, base_url: str,
                served: Collection[str]) -> PlannedEntry:
    """One entry's request; InvalidRequest naming what is wrong with it."""
    if not isinstance(raw, dict):
        raise InvalidRequest("The entry is not a JSON object")
    request = raw.get("request")
    if not isinstance(request, dict):
        raise InvalidRequest("The entry has no request (method and url)",
                             issues=[Issue("entry.request is required", code="required",
                                           expression=(f"Bundle.entry[{index}].request",))])
    method, url = request.get("method"), request.get("url")
    if method not in METHOD_ORDER:
        raise InvalidRequest(f"request.method '{str(method)[:20]}' is not one of "
                             f"{', '.join(METHOD_ORDER)}")
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest("request.url is required")
    full_url = raw.get("fullUrl")
    full_url = full_url if isinstance(full_url, str) else None
    path, query = _split_url(url.strip(), base_url)
    parts = path.split("/") if path else []
    if not parts or not _TYPE.match(parts[0]):
        raise InvalidRequest(f"request.url '{url[:80]}' does not start with a resource type")
    resource_type = parts[0]
    if resource_type not in served:
        raise _Unsupported(f"Resource type '{resource_type}' is not served here; served: "
                           f"{', '.join(sorted(served))}", resource_type=resource_type)
    if any(part.startswith("$") for part in parts):
        raise InvalidRequest(f"Operations ('{url[:80]}') are not supported inside a Bundle")
    entry = PlannedEntry(index, full_url, method, url, "", resource_type, query=query)
    _read_conditions(entry, request)
    if method in ("POST", "PUT"):
        entry.resource = validate_resource(raw.get("resource"), resource_type)
    elif method == "PATCH":
        entry.resource = _patch_body(raw.get("resource"))
    _set_action(entry, parts, query)
    return entry


def _split_url(url: str, base_url: str) -> tuple[str, str | None]:
    if url.startswith(base_url + "/"):
        url = url[len(base_url) + 1:]
    elif urlsplit(url).scheme:
        raise InvalidRequest(f"request.url '{url[:80]}' is not on this server ({base_url})")
    path, mark, query = url.lstrip("/").partition("?")
    return path.rstrip("/"), (query if mark else None)


def _set_action(entry: PlannedEntry, parts: list[str], query: str | None) -> None:
    method, ids = entry.method, parts[1:]
    if ids and not _ID.match(ids[0]):
        raise InvalidRequest(f"'{ids[0][:80]}' is not a valid resource id")
    if method == "POST":
        if ids or query:
            raise InvalidRequest(f"POST must name a type only ('{entry.resource_type}'); "
                                 "use request.ifNoneExist for a conditional create")
        entry.action = "create"
        return
    if method in ("GET", "HEAD"):
        if not ids:
            entry.action = "search"
            entry.query = query or ""
            return
        if len(ids) == 1 and query is None:
            entry.action, entry.resource_id = "read", ids[0]
            return
        if len(ids) == 3 and ids[1] == "_history" and _VERSION.match(ids[2]) and query is None:
            entry.action, entry.resource_id, entry.version_id = "vread", ids[0], int(ids[2])
            return
        raise InvalidRequest(f"GET '{entry.url[:80]}' is not a read, vread or search")
    if len(ids) > 1 or (ids and query is not None) or (not ids and not query):
        raise InvalidRequest(f"{method} '{entry.url[:80]}' must name Type/id or "
                             "Type?criteria")
    entry.action = {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
    entry.resource_id = ids[0] if ids else None


def _read_conditions(entry: PlannedEntry, request: dict[str, Any]) -> None:
    if_none_exist = request.get("ifNoneExist")
    if if_none_exist is not None:
        if entry.method != "POST" or not isinstance(if_none_exist, str):
            raise InvalidRequest("request.ifNoneExist applies to POST only, as a query string")
        entry.if_none_exist = if_none_exist
    if_match = request.get("ifMatch")
    if if_match is not None:
        if entry.method not in ("PUT", "PATCH", "DELETE") or not isinstance(if_match, str):
            raise InvalidRequest("request.ifMatch applies to PUT, PATCH and DELETE only")
        entry.if_match = if_match_version(if_match)
    if_none_match = request.get("ifNoneMatch")
    if if_none_match is not None:
        if not isinstance(if_none_match, str):
            raise InvalidRequest("request.ifNoneMatch must be a string")
        entry.if_none_match = if_none_match.strip()
    since = request.get("ifModifiedSince")
    if since is not None:
        try:
            entry.if_modified_since = datetime.fromisoformat(str(since))
        except ValueError:
            raise InvalidRequest(f"request.ifModifiedSince '{str(since)[:40]}' is not an "
                                 "instant") from None
        if entry.if_modified_since.tzinfo is None:
            raise InvalidRequest("request.ifModifiedSince needs a time zone")


def _patch_body(resource: Any) -> dict[str, Any]:
    """A PATCH entry carries its JSON Patch as a Binary (https://hl7.org/fhir/R4/http.html#patch)."""
    if (not isinstance(resource, dict) or resource.get("resourceType") != "Binary"
            or resource.get("contentType") != "application/json-patch+json"
            or not isinstance(resource.get("data"), str)):
        raise InvalidRequest("A PATCH entry's resource must be a Binary with contentType "
                             "application/json-patch+json holding the patch as base64 data")
    return resource


def _assign_ids(plan: BundlePlan, base_url: str, new_id: Callable[[], str]) -> None:
    """Ids for creates now; fullUrls of creates and updates mapped to their ``Type/id``."""
    for entry in plan.entries:
        if entry is None or entry.method not in ("POST", "PUT"):
            continue
        if entry.method == "POST":
            entry.resource_id = new_id()
        if entry.resource_id is None:  # a conditional update: known when it is resolved
            continue
        target = f"{entry.resource_type}/{entry.resource_id}"
        for alias in aliases_of(entry.full_url, base_url):
            plan.aliases[alias] = target


def aliases_of(full_url: str | None, base_url: str) -> list[str]:
    """The literals that name an entry with this fullUrl: the fullUrl itself, and for an
    absolute ``.../Type/id`` the relative ``Type/id`` too."""
    if not full_url:
        return []
    found = [full_url]
    if full_url.startswith(("http://", "https://")):
        parts = full_url.rstrip("/").split("/")
        if len(parts) >= 2 and _TYPE.match(parts[-2]) and _ID.match(parts[-1]):
            found.append(f"{parts[-2]}/{parts[-1]}")
    if full_url.startswith(base_url + "/"):
        found.append(full_url[len(base_url) + 1:])
    return found


def _check_duplicates(plan: BundlePlan) -> None:
    seen: dict[str, int] = {}
    for entry in plan.entries:
        if entry is None or entry.method not in ("PUT", "PATCH", "DELETE") \
                or entry.resource_id is None:
            continue
        key = f"{entry.resource_type}/{entry.resource_id}"
        if key in seen:
            plan.errors[entry.index] = at_entry(InvalidRequest(
                f"{key} is also changed by Bundle.entry[{seen[key]}]; a transaction may "
                "change a resource once"), entry.index, entry.full_url)
        seen.setdefault(key, entry.index)


def _dependency_order(creates: list[PlannedEntry], aliases: dict[str, str]) -> list[PlannedEntry]:
    """Creates ordered so each comes after the creates it refers to (Bundle order otherwise;
    the members of a cycle keep Bundle order)."""
    by_target = {f"{e.resource_type}/{e.resource_id}": e for e in creates}
    waiting: dict[int, int] = {}
    dependants: dict[int, list[PlannedEntry]] = {}
    for entry in creates:
        targets = {aliases.get(literal, literal) for literal in reference_literals(entry.resource)}
        needed = {by_target[t].index for t in targets
                  if t in by_target and by_target[t] is not entry}
        waiting[entry.index] = len(needed)
        for index in needed:
            dependants.setdefault(index, []).append(entry)
    ready = [(e.index, e) for e in creates if waiting[e.index] == 0]
    heapq.heapify(ready)
    remaining = {e.index: e for e in creates}
    ordered: list[PlannedEntry] = []
    while remaining:
        if not ready:  # a cycle: release its first member
            first = min(remaining)
            ready.append((first, remaining[first]))
            waiting[first] = 0
        _, entry = heapq.heappop(ready)
        if entry.index not in remaining:
            continue
        del remaining[entry.index]
        ordered.append(entry)
        for dependant in dependants.get(entry.index, []):
            waiting[dependant.index] -= 1
            if waiting[dependant.index] == 0 and dependant.index in remaining:
                heapq.heappush(ready, (dependant.index, dependant))
    return ordered
