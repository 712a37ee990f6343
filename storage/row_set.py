"""A resource's rows: the main table row and its child rows, as plain dicts.

The same shape comes from the database, goes to it, and is stored as JSON in the version
history, so one mapping turns any of them back into the resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


class ValueRows(RowSet):
    """Rows whose child rows arrived as lists of values in ``child_columns`` order (a search
    page from PostgreSQL). A mapping that knows that order joins the values directly;
    ``children`` builds the usual dicts for anyone else, on first use."""

    def __init__(self, main: dict[str, Any], child_values: dict[str, list[list[Any]]],
                 child_columns: Mapping[str, Sequence[str]]) -> None:
        self.main = main
        self.child_values = child_values
        self.child_columns = child_columns
        self._children: dict[str, list[dict[str, Any]]] | None = None

    @property
    def children(self) -> dict[str, list[dict[str, Any]]]:
        if self._children is None:
            self._children = {key: [dict(zip(self.child_columns[key], values))
                                    for values in rows]
                              for key, rows in self.child_values.items()}
        return self._children

    @children.setter
    def children(self, value: dict[str, list[dict[str, Any]]]) -> None:
        self._children = value


def _iso(value: Any) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")
