"""Binary <-> PRM ``binaries`` rows. The bytes live in the blob store under their SHA-256;
the row keeps the content type, the hash, the size and the security context. ``data`` is not
part of the stored resource: reads in a FHIR format add it from the blob."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mappings.document_reference_search import common_parameters
from mappings.elements import dump_json, load_json, order_keys, remainder_of, with_server_meta
from mappings.search_backing import SearchParameter
from mappings.search_rows import TokenRows
from storage.row_set import RowSet

RESOURCE_TYPE = "Binary"
ORDER = ("resourceType", "id", "meta", "implicitRules", "language", "contentType",
         "securityContext", "data")
BINARY_SEARCH: dict[str, SearchParameter] = common_parameters()
SEARCH_ONLY = frozenset({"tokens", "references"})
_PLAIN_REFERENCE = re.compile(r"^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True)
class BinaryContent:
    """The blob a Binary version points at."""

    sha256: str
    size: int


def resource_to_rows(resource: dict[str, Any], *, resource_id: str, version_id: int,
                     last_updated: datetime, content: BinaryContent) -> RowSet:
    remainder = remainder_of(resource, ("resourceType", "id", "contentType", "data"))
    security_context = None
    context = resource.get("securityContext")
    if isinstance(context, dict) and set(context) == {"reference"} \
            and _PLAIN_REFERENCE.match(str(context["reference"])):
        security_context = context["reference"]
        remainder.pop("securityContext")
    tokens = TokenRows()
    tokens.meta(resource)
    main = {
        "id": resource_id, "version_id": version_id, "last_updated": last_updated,
        "deleted_at": None, "content_type": resource["contentType"],
        "sha256": content.sha256, "size": content.size,
        "security_context": security_context, "remainder": dump_json(remainder),
    }
    return RowSet(main, {"tokens": tokens.rows, "references": []})


def rows_to_resource(rows: RowSet) -> dict[str, Any]:
    main = rows.main
    resource: dict[str, Any] = load_json(main["remainder"]) or {}
    resource["resourceType"] = RESOURCE_TYPE
    resource["id"] = main["id"]
    with_server_meta(resource, main)
    resource["contentType"] = main["content_type"]
    if main.get("security_context"):
        resource["securityContext"] = {"reference": main["security_context"]}
    return order_keys(resource, ORDER)


class BinaryMapping:
    """The Binary mapping as the mapped repository uses it; ``facts`` is the BinaryContent."""

    resource_type = RESOURCE_TYPE
    search_parameters = BINARY_SEARCH
    search_only = SEARCH_ONLY

    def to_rows(self, resource: dict[str, Any], *, resource_id: str, version_id: int,
                last_updated: datetime, facts: Any) -> RowSet:
        assert isinstance(facts, BinaryContent)
        return resource_to_rows(resource, resource_id=resource_id, version_id=version_id,
                                last_updated=last_updated, content=facts)

    def to_resource(self, rows: RowSet) -> dict[str, Any]:
        return rows_to_resource(rows)
