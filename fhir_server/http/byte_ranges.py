"""Which bytes a download answers with, from its ``Range`` and ``If-Range`` headers (RFC 9110
sections 14 and 13.1.5).

One ``bytes`` range is served (206); a range that starts past the end, or a zero-length
suffix, is refused (416, ``Content-Range: bytes */size``). Everything else a server must or may
ignore is ignored, and the whole file is sent (200): a unit other than ``bytes`` (must), a
malformed or backwards range and several ranges at once (may; nothing here serves
``multipart/byteranges``), and a Range whose ``If-Range`` validator does not match (must). A
Binary's ETag is weak (``W/"3"``) and If-Range compares strongly, so only a date equal to the
answer's Last-Modified lets the range through, as resuming download managers send it.
"""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

from fhir_server.errors import RangeNotSatisfiable

_SINGLE_RANGE = re.compile(r"^(\d*)-(\d*)$")


def requested_range(range_header: str | None, if_range: str | None, *, size: int,
                    last_modified: str | None) -> tuple[int, int] | None:
    """(first, last) byte to send, or None for the whole file; RangeNotSatisfiable for a
    range that cannot be met."""
    if not range_header:
        return None
    if if_range is not None and not _validator_matches(if_range, last_modified):
        return None
    unit, _, spec = range_header.strip().partition("=")
    if unit.strip().lower() != "bytes":
        return None
    match = _SINGLE_RANGE.match(spec.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first and last and int(last) < int(first):
        return None
    if first == "":  # the last N bytes (all of them when the file is shorter)
        if int(last) == 0:
            raise _unsatisfiable(range_header, size)
        return max(size - int(last), 0), size - 1
    start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size:
        raise _unsatisfiable(range_header, size)
    return start, end


def _validator_matches(if_range: str, last_modified: str | None) -> bool:
    """Strong comparison: an entity tag never matches (a Binary's are weak), a date only when
    it is the answer's Last-Modified."""
    value = if_range.strip()
    if value.startswith(('"', "W/")) or last_modified is None:
        return False
    try:
        return parsedate_to_datetime(value) == parsedate_to_datetime(last_modified)
    except (TypeError, ValueError, IndexError):
        return False


def _unsatisfiable(range_header: str, size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(f"Range '{range_header[:60]}' lies outside the {size} bytes",
                               headers={"Content-Range": f"bytes */{size}"})
