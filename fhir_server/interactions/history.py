"""FHIR history for an instance or a type: a Bundle of type history, newest first, paged, of
the versions made since ``_since`` and current during ``_at``.
https://hl7.org/fhir/R4/http.html#history"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fhir_server.errors import InvalidRequest
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.interactions.result import InteractionResult
from mappings.fhir_dates import DateValueError, date_range, format_instant
from storage.stored import StoredResource

_DIGITS = re.compile(r"[0-9]{1,12}")
MAX_INT = 2_147_483_647
"""Largest paging value accepted (the databases' 32-bit integer range)."""


def parse_paging(
    params: dict[str, str], *, default_count: int, max_count: int
) -> tuple[int, int, datetime | None]:
    """(count, offset, since) from ``_count``, ``_offset`` and ``_since``."""
    count, offset, since = default_count, 0, None
    if "_count" in params:
        count = _non_negative_int("_count", params["_count"])
        count = min(count, max_count)
    if "_offset" in params:
        offset = _non_negative_int("_offset", params["_offset"])
    if "_since" in params:
        since = _instant("_since", params["_since"])
    return count, offset, since


HISTORY_PARAMETERS = frozenset({"_count", "_offset", "_since", "_at"})
"""What history takes (``_format`` and ``_pretty`` are the server's, kept in the links)."""
_FORMAT_PARAMETERS = frozenset({"_format", "_pretty"})


def _known(params: dict[str, str], *, strict: bool) -> dict[str, str]:
    unknown = sorted(name for name in params
                     if name not in HISTORY_PARAMETERS | _FORMAT_PARAMETERS)
    if unknown and strict:
        raise InvalidRequest(
            f"History does not support the parameters {', '.join(n[:80] for n in unknown[:10])}"
            f" (it takes {', '.join(sorted(HISTORY_PARAMETERS))}); without Prefer: "
            "handling=strict they are ignored")
    return {name: value for name, value in params.items() if name not in unknown}


def parse_at(params: dict[str, str]) -> tuple[datetime, datetime] | None:
    """The period ``_at`` names (its first and last instant, by the value's precision: a year,
    a month, a day, a minute, a second or less), or None without ``_at``."""
    if "_at" not in params:
        return None
    try:
        return date_range(params["_at"])
    except DateValueError as exc:
        raise InvalidRequest(f"_at: {exc} (give a date, dateTime or instant; prefixes such as "
                             "'ge' are not taken)") from None


def _instant(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise InvalidRequest(f"{name} must include a timezone (a FHIR instant)")
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"{name} '{value[:64]}' is not a FHIR instant in range") from None


def _non_negative_int(name: str, value: str) -> int:
    if not _DIGITS.fullmatch(value) or int(value) > MAX_INT:
        raise InvalidRequest(
            f"{name} '{value[:32]}' must be an integer from 0 to {MAX_INT}")
    return int(value)


async def history(
    repository: ResourceRepository,
    *,
    base_url: str,
    resource_id: str | None,
    params: dict[str, str],
    default_count: int,
    max_count: int,
    strict: bool = False,
) -> InteractionResult:
    """``strict`` (``Prefer: handling=strict``): a parameter history does not take is 400;
    otherwise it is ignored and left out of the links."""
    params = _known(params, strict=strict)
    count, offset, since = parse_paging(params, default_count=default_count, max_count=max_count)
    total, versions = await repository.history(
        resource_id=resource_id, since=since, count=count, offset=offset,
        at=parse_at(params),
    )
    path = f"{base_url}/{repository.resource_type}" + (f"/{resource_id}" if resource_id else "") + "/_history"
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": _links(path, params, count=count, offset=offset, total=total),
        "entry": [_entry(base_url, repository.resource_type, version)
                  for version in versions],
    }
    if not bundle["entry"]:
        del bundle["entry"]
    return InteractionResult(200, "Bundle", body=bundle)


def _links(
    path: str, params: dict[str, str], *, count: int, offset: int, total: int
) -> list[dict[str, str]]:
    def url(page_offset: int) -> str:
        query = {k: v for k, v in params.items() if k not in ("_count", "_offset")}
        query |= {"_count": str(count), "_offset": str(page_offset)}
        return f"{path}?{urlencode(query)}"

    links = [{"relation": "self", "url": url(offset)}]
    if count and offset + count < total:
        links.append({"relation": "next", "url": url(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": url(max(offset - count, 0))})
    return links


def _entry(base_url: str, resource_type: str, version: StoredResource) -> dict[str, Any]:
    full_url = f"{base_url}/{resource_type}/{version.resource_id}"
    entry: dict[str, Any] = {"fullUrl": full_url}
    if version.resource is not None:
        entry["resource"] = version.resource
    method = version.method if version.method in ("POST", "PUT", "PATCH", "DELETE") else "PUT"
    entry["request"] = {
        "method": method,
        "url": resource_type if method == "POST" else f"{resource_type}/{version.resource_id}",
    }
    entry["response"] = {
        "status": {"POST": "201 Created", "DELETE": "204 No Content"}.get(method, "200 OK"),
        "etag": f'W/"{version.version_id}"',
        "lastModified": format_instant(version.last_updated),
    }
    return entry
