"""The shape most PRM mappings share: a few top-level elements owned by columns (a PRM edit of
the column shows on the next read), derived PRM columns, search values, and a ``remainder``
JSON keeping every other element, so a read returns what was written."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mappings.elements import dump_json, load_json, order_keys, remainder_of, with_server_meta
from storage.row_set import RowSet


@dataclass(frozen=True)
class OwnedColumnsMapping:
    resource_type: str
    order: Sequence[str]
    owned: dict[str, str]
    """FHIR top-level key -> column that owns it (simple values only)."""
    derive: Callable[[dict[str, Any]], dict[str, Any]]
    """PRM and search columns derived from the resource (never read back)."""
    children: Callable[[dict[str, Any]], dict[str, list[dict[str, Any]]]]

    def to_rows(self, resource: dict[str, Any], *, resource_id: str, version_id: int,
                last_updated: datetime) -> RowSet:
        remainder = remainder_of(resource, ("resourceType", "id", *self.owned))
        main: dict[str, Any] = {
            "id": resource_id, "version_id": version_id, "last_updated": last_updated,
            "deleted_at": None, "remainder": dump_json(remainder),
            **{column: resource.get(key) for key, column in self.owned.items()},
            **self.derive(resource),
        }
        return RowSet(main, self.children(resource))

    def to_resource(self, rows: RowSet) -> dict[str, Any]:
        main = rows.main
        resource: dict[str, Any] = load_json(main["remainder"]) or {}
        resource["resourceType"] = self.resource_type
        resource["id"] = main["id"]
        with_server_meta(resource, main)
        for key, column in self.owned.items():
            if main.get(column) is not None:
                resource[key] = main[column]
        return order_keys(resource, self.order)
