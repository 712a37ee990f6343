"""Conditional read (https://hl7.org/fhir/R4/http.html#cread): a client that holds a version
sends its ETag in ``If-None-Match`` or its Last-Modified in ``If-Modified-Since`` and gets
304 Not Modified, without the body, while that version is still the one it would get.

RFC 9110 13.1.2 and 13.1.3: If-None-Match is compared weakly (the version ETags here are weak,
``W/"3"``), ``*`` matches any current version, and when it is present If-Modified-Since is not
looked at; If-Modified-Since compares whole seconds (an HTTP date has no fraction). A header
that cannot be read is ignored: the full answer is never wrong."""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response

_TAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*')


def not_modified(request: Request, version_id: int | str,
                 last_updated: datetime | None) -> bool:
    """Whether the client's copy (per its validators) is this version (``version_id``: the
    ETag's value; without ``last_updated`` only If-None-Match can tell)."""
    tags = request.headers.get("if-none-match")
    if tags is not None:
        return _any_tag_matches(tags, str(version_id))
    since = request.headers.get("if-modified-since")
    if since is None or last_updated is None:
        return False
    try:
        date = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    if date.tzinfo is None:
        return False  # an HTTP date is always GMT; one without a zone is not one
    return last_updated.replace(microsecond=0) <= date


def _any_tag_matches(header: str, version: str) -> bool:
    if header.strip() == "*":
        return True
    return any((match := _TAG.fullmatch(part)) is not None and match.group(1) == version
               for part in header.split(","))


def not_modified_response(version_id: int | str, last_updated: datetime | None) -> Response:
    """304 with the validators the full answer would carry (ETag, Last-Modified)."""
    return Response(status_code=304, headers=validator_headers(version_id, last_updated))


def validator_headers(version_id: int | str, last_updated: datetime | None) -> dict[str, str]:
    """ETag (weak: the resource's version, not its bytes) and Last-Modified when known."""
    headers = {"ETag": f'W/"{version_id}"'}
    if last_updated is not None:
        headers["Last-Modified"] = format_datetime(last_updated, usegmt=True)
    return headers
