"""A resource's rows: the main table row and its child rows, as plain dicts.

The same shape comes from the database, goes to it, and is stored as JSON in the version
history, so one mapping turns any of them back into the resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson


@dataclass
class RowSet:
    """The main row and the child rows, by child table key, in element order."""

    main: dict[str, Any]
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_snapshot(self, *, derived: frozenset[str] = frozenset()) -> str:
        """JSON text of the rows (dates as ISO strings) for the version history, without the
        ``derived`` columns and child keys (search values recomputed from the rest)."""
        main = {key: value for key, value in self.main.items() if key not in derived}
        children = {key: rows for key, rows in self.children.items() if key not in derived}
        return orjson.dumps({"main": main, "children": children}, default=_iso).decode()

    @classmethod
    def from_snapshot(cls, snapshot: str) -> RowSet:
        data = orjson.loads(snapshot)
        return cls(main=data["main"], children=data["children"])


def _iso(value: Any) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")
