"""What every repository hands back: a stored version, a search page, the clock they share, and
the two ways a write can lose a race."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class RowConflict(Exception):
    """A unique key (id or MRN) is taken: another writer got there first."""


class VersionMoved(Exception):
    """The row is no longer at the version the write expected."""


@dataclass(frozen=True)
class StoredResource:
    """One version of a resource as stored; ``resource`` is None for a deleted version."""

    resource_id: str
    version_id: int
    last_updated: datetime
    resource: dict[str, Any] | None
    method: str = "GET"

    @property
    def deleted(self) -> bool:
        return self.resource is None


@dataclass(frozen=True)
class SearchResults:
    """One page of a search; the tokens fetch the neighbouring pages. ``included`` holds
    (resource type, resource) pairs added by _include / _revinclude."""

    resources: list[dict[str, Any]]
    next_token: str | None
    previous_token: str | None
    total: int | None
    included: list[dict[str, Any]]


def now() -> datetime:
    """The current time in UTC, truncated to milliseconds (what meta.lastUpdated shows)."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
