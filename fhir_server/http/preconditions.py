"""Conditional request headers: ``If-Match`` (versions as weak ETags) and ``Prefer: return``."""

from __future__ import annotations

import re

from fhir_server.errors import InvalidRequest

_ETAG = re.compile(r'^\s*(?:W/)?"(\d+)"\s*$')
PREFER_RETURN = frozenset({"minimal", "representation", "OperationOutcome"})


def if_match_version(header: str | None) -> int | None:
    """The version named by ``If-Match: W/"3"``; InvalidRequest when it is not an ETag."""
    if header is None:
        return None
    match = _ETAG.match(header)
    if match is None:
        raise InvalidRequest(
            f"If-Match '{header[:64]}' is not a version ETag such as W/\"3\""
        )
    return int(match.group(1))


def prefer_return(header: str | None) -> str:
    """The ``return`` preference (minimal | representation | OperationOutcome); default representation."""
    if header:
        for part in header.split(";"):
            for token in part.split(","):
                name, _, value = token.strip().partition("=")
                if name.strip() == "return" and value.strip().strip('"') in PREFER_RETURN:
                    return value.strip().strip('"')
    return "representation"


def prefer_handling(header: str | None) -> str:
    """The ``handling`` preference for unknown search parameters: strict | lenient (default)."""
    if header:
        for token in header.replace(";", ",").split(","):
            name, _, value = token.strip().partition("=")
            if name.strip() == "handling" and value.strip().strip('"') in ("strict", "lenient"):
                return value.strip().strip('"')
    return "lenient"
