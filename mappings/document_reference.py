"""DocumentReference <-> PRM ``media_assets`` rows, both ways, lossless.

Columns own ``status``, ``docStatus``, ``description`` and a ``subject`` that is a plain
``Patient/{id}`` reference (``patient_id``): a row the PRM changes directly is read back with
its columns. The PRM's file columns (binary, SHA-256, size, content type, title of the first
content), its category (through the ConceptMap in ``terminology``), its source (the
document-source extension) and the type code are derived on write; every other element is
kept in ``remainder``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fhir_server.errors import InvalidResource, Issue
from mappings.document_reference_search import (
    DOCUMENT_REFERENCE_SEARCH,
    SEARCH_ONLY,
    search_columns,
    search_reference_rows,
    search_token_rows,
)
from mappings.elements import dump_json, load_json, order_keys, remainder_of, with_server_meta
from mappings.fhir_dates import DateValueError, date_range
from storage.row_set import RowSet
from terminology import systems
from terminology.document_categories import prm_category

RESOURCE_TYPE = "DocumentReference"
SOURCES = ("upload", "whatsapp", "email", "voice_agent", "fax", "ehr")
ORDER = (
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained",
    "extension", "modifierExtension", "masterIdentifier", "identifier", "status", "docStatus",
    "type", "category", "subject", "date", "author", "authenticator", "custodian", "relatesTo",
    "description", "securityLabel", "content", "context",
)
COLUMN_OWNED = {"status": "status", "docStatus": "doc_status", "description": "description"}
_PATIENT_REFERENCE = re.compile(r"^Patient/([A-Za-z0-9\-.]{1,64})$")
_BINARY_URL = re.compile(r"^Binary/([A-Za-z0-9\-.]{1,64})$")


class DocumentRuleError(ValueError):
    """The DocumentReference breaks a PRM rule; ``issues`` say where."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("; ".join(issue.diagnostics for issue in issues))
        self.issues = issues


def binary_id_of(url: Any) -> str | None:
    """The id of the Binary here a relative attachment url (``Binary/x``) points at; absolute
    urls are other servers' and kept as given."""
    if not isinstance(url, str):
        return None
    match = _BINARY_URL.search(url)
    return match.group(1) if match else None


def document_source(resource: dict[str, Any]) -> str | None:
    for extension in resource.get("extension") or ():
        if extension.get("url") == systems.DOCUMENT_SOURCE_EXTENSION:
            return extension.get("valueCode")  # type: ignore[no-any-return]
    return None


def check_rules(resource: dict[str, Any]) -> None:
    issues: list[Issue] = []
    source = document_source(resource)
    if source is not None and source not in SOURCES:
        issues.append(Issue(
            f"Document source '{str(source)[:40]}' is not one of {', '.join(SOURCES)}",
            code="code-invalid", expression=("DocumentReference.extension",)))
    if issues:
        raise DocumentRuleError(issues)


def resource_to_rows(
    resource: dict[str, Any], *, resource_id: str, version_id: int, last_updated: datetime,
    sha256_of: dict[str, str],
) -> RowSet:
    """The rows for ``resource``; ``sha256_of`` maps the Binary ids its attachments point at to
    their content hashes (the PRM's file columns)."""
    check_rules(resource)
    remainder = remainder_of(resource, ("resourceType", "id", *COLUMN_OWNED))
    subject = resource.get("subject")
    patient_id = None
    if isinstance(subject, dict) and set(subject) == {"reference"}:
        match = _PATIENT_REFERENCE.match(str(subject["reference"]))
        if match:
            patient_id = match.group(1)
            remainder.pop("subject")
    elif isinstance(subject, dict):
        match = _PATIENT_REFERENCE.match(str(subject.get("reference", "")))
        patient_id = match.group(1) if match else None
    contents = resource.get("content") or [{}]
    attachment = contents[0].get("attachment") or {}
    binary_id = binary_id_of(attachment.get("url"))
    type_codings = (resource.get("type") or {}).get("coding") or [{}]
    main: dict[str, Any] = {
        "id": resource_id,
        "version_id": version_id,
        "last_updated": last_updated,
        "deleted_at": None,
        "patient_id": patient_id,
        "status": resource["status"],
        "doc_status": resource.get("docStatus"),
        "category": prm_category([*(resource.get("category") or []),
                                  *([resource["type"]] if resource.get("type") else [])]),
        "source": document_source(resource),
        "type_system": type_codings[0].get("system"),
        "type_code": type_codings[0].get("code"),
        "description": resource.get("description"),
        "document_date": _instant(resource.get("date")),
        "binary_id": binary_id,
        "sha256": sha256_of.get(binary_id) if binary_id else None,
        "file_size": attachment.get("size"),
        "content_type": attachment.get("contentType"),
        "title": attachment.get("title"),
        "remainder": dump_json(remainder),
        **search_columns(resource),
    }
    return RowSet(main, {"tokens": search_token_rows(resource),
                         "references": search_reference_rows(resource)})


def rows_to_resource(rows: RowSet) -> dict[str, Any]:
    main = rows.main
    resource: dict[str, Any] = load_json(main["remainder"]) or {}
    resource["resourceType"] = RESOURCE_TYPE
    resource["id"] = main["id"]
    with_server_meta(resource, main)
    for key, column in COLUMN_OWNED.items():
        if main.get(column) is not None:
            resource[key] = main[column]
    if "subject" not in resource and main.get("patient_id"):
        resource["subject"] = {"reference": f"Patient/{main['patient_id']}"}
    return order_keys(resource, ORDER)


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return date_range(value)[0]
    except DateValueError:
        return None



class DocumentReferenceMapping:
    """The DocumentReference mapping as the mapped repository uses it; ``facts`` is the
    Binary id -> SHA-256 map of the attachments."""

    resource_type = RESOURCE_TYPE
    search_parameters = DOCUMENT_REFERENCE_SEARCH
    search_only = SEARCH_ONLY

    def to_rows(self, resource: dict[str, Any], *, resource_id: str, version_id: int,
                last_updated: datetime, facts: Any) -> RowSet:
        try:
            return resource_to_rows(resource, resource_id=resource_id, version_id=version_id,
                                    last_updated=last_updated, sha256_of=facts or {})
        except DocumentRuleError as exc:
            raise InvalidResource(str(exc), issues=exc.issues) from exc

    def to_resource(self, rows: RowSet) -> dict[str, Any]:
        return rows_to_resource(rows)
