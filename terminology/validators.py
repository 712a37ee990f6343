"""HTTP validators of the bundled terminology resources, for conditional read: an entity tag
from the resource's content (they carry no ``meta.versionId``; a new release that changes a
resource changes its tag, so a client's cached copy is never taken for a newer one) and a
Last-Modified from ``meta.lastUpdated``, else the publication ``date``, else none."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache

import orjson

from mappings.fhir_dates import DateValueError, date_range
from terminology.content import catalog

TAG_LENGTH = 16
"""Hex digits of the content's SHA-256 kept in the tag (64 bits: ample for ~100 resources)."""


@cache
def validators(resource_type: str, resource_id: str) -> tuple[str, datetime | None]:
    """(entity tag, last modified) of a bundled resource; KeyError if it is not bundled."""
    resource = catalog().resources[resource_type][resource_id]
    digest = hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest[:TAG_LENGTH], _last_modified(resource)


def _last_modified(resource: dict[str, object]) -> datetime | None:
    meta = resource.get("meta")
    stamp = meta.get("lastUpdated") if isinstance(meta, dict) else None
    for candidate in (stamp, resource.get("date")):
        if isinstance(candidate, str):
            try:
                return date_range(candidate)[0].astimezone(UTC)
            except DateValueError:
                continue
    return None
