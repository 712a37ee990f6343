"""Patient <-> PRM rows (``patients`` and its child tables), both ways, lossless.

Columns own the elements they map; every other element is kept in ``patients.remainder`` or a
child row's ``extra``, so a read returns what was written. Server-set elements (documented in
the README): ``meta.versionId``, ``meta.lastUpdated``, the MRN identifier when the client
sent none, and SSNs sent as nine bare digits, which are stored and returned as ###-##-####. SSNs are stored only as ciphertext and keyed hash, never in clear.

The PRM summary columns (legal name, primary phone in E.164, email, first address, race,
ethnicity, preferred language, emergency contact, status) are derived on write. For race,
ethnicity, preferred language and emergency contact the columns also win on read: a row the
PRM changed directly is shown with the element rebuilt from its columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fhir_server.errors import Issue
from fhir_server.matching.keys import blocking_keys
from fhir_server.matching.record import record_from_rows
from mappings.contact_points import ContactPointError, check_email, phone_to_e164
from mappings.elements import (
    dump_json,
    join_element,
    join_plan,
    join_values,
    load_json,
    order_keys,
    remainder_of,
    split_element,
    values_plan,
    with_server_meta,
)
from mappings.fhir_dates import format_instant
from mappings.patient_demographics import (
    CONTACT_COLUMNS,
    ETHNICITY_COLUMNS,
    LANGUAGE_COLUMNS,
    RACE_COLUMNS,
    derive_demographics,
    rebuild_demographics,
)
from mappings.patient_search import search_columns, search_reference_rows, search_token_rows
from mappings.search_rows import type_codings
from storage.crypto import FieldCipher
from storage.row_set import RowSet, ValueRows
from terminology import systems

RESOURCE_TYPE = "Patient"
SSN_SYSTEM = systems.SSN
IDENTIFIER_TYPE_SYSTEM = systems.V2_IDENTIFIER_TYPE
SSN_PATTERN = re.compile(r"^(\d{3})-?(\d{2})-?(\d{4})$")

PATIENT_ORDER = (
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
    "modifierExtension", "identifier", "active", "name", "telecom", "gender", "birthDate",
    "deceasedBoolean", "deceasedDateTime", "address", "maritalStatus", "multipleBirthBoolean",
    "multipleBirthInteger", "photo", "contact", "communication", "generalPractitioner",
    "managingOrganization", "link",
)
IDENTIFIER_COLUMNS = {"use": "use", "system": "system", "value": "value"}
IDENTIFIER_ORDER = ("id", "extension", "use", "type", "system", "value", "period", "assigner")
NAME_COLUMNS = {
    "use": "use", "text": "text", "family": "family", "given": "given",
    "prefix": "prefix", "suffix": "suffix",
}
NAME_JSON = ("given", "prefix", "suffix")
NAME_ORDER = ("id", "extension", "use", "text", "family", "given", "prefix", "suffix", "period")
TELECOM_COLUMNS = {"system": "system", "value": "value", "use": "use", "rank": "rank"}
TELECOM_ORDER = ("id", "extension", "system", "value", "use", "rank", "period")
ADDRESS_COLUMNS = {
    "use": "use", "type": "type", "text": "text", "line": "line", "city": "city",
    "district": "district", "state": "state", "postalCode": "postal_code", "country": "country",
}
ADDRESS_JSON = ("line",)
ADDRESS_ORDER = (
    "id", "extension", "use", "type", "text", "line", "city", "district", "state",
    "postalCode", "country", "period",
)
IDENTIFIER_PLAN = join_plan(IDENTIFIER_COLUMNS, IDENTIFIER_ORDER)
NAME_PLAN = join_plan(NAME_COLUMNS, NAME_ORDER, NAME_JSON)
TELECOM_PLAN = join_plan(TELECOM_COLUMNS, TELECOM_ORDER)
ADDRESS_PLAN = join_plan(ADDRESS_COLUMNS, ADDRESS_ORDER, ADDRESS_JSON)
OWNED_TOP_LEVEL = frozenset(
    {"resourceType", "id", "meta", "identifier", "name", "telecom", "address", "gender",
     "birthDate", "active", "deceasedBoolean", "deceasedDateTime"}
)
MAX_INDEXED_BYTES = 1000
"""Longest identifier system/value and family name (UTF-8 bytes): they are indexed, and a
database index entry has a size limit (PostgreSQL: about 2.7 kB)."""


@dataclass(frozen=True)
class MappingContext:
    """What the mapping needs beyond the resource: keys and the PRM's configuration."""

    cipher: FieldCipher
    phone_region: str
    mrn_system: str


class PatientRuleError(ValueError):
    """A PRM rule refuses the resource; carries one issue per element at fault."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("; ".join(issue.diagnostics for issue in issues))
        self.issues = issues


# ----------------------------------------------------------------------------- write side


def find_mrn(resource: dict[str, Any], mrn_system: str) -> str | None:
    """The MRN the client sent (an identifier in the PRM's MRN system), if any."""
    for identifier in resource.get("identifier") or ():
        if identifier.get("system") == mrn_system and identifier.get("value"):
            return str(identifier["value"])
    return None


def mrn_identifier(mrn: str, mrn_system: str) -> dict[str, Any]:
    """The identifier the server adds for a generated MRN (type MR, v2-0203)."""
    return {
        "use": "usual",
        "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM,
                              "code": systems.MEDICAL_RECORD_NUMBER}]},
        "system": mrn_system,
        "value": mrn,
    }


def resource_to_rows(
    resource: dict[str, Any],
    *,
    resource_id: str,
    version_id: int,
    last_updated: datetime,
    mrn: str,
    context: MappingContext,
) -> RowSet:
    """The rows for a validated Patient; raises PatientRuleError when a PRM rule refuses it."""
    issues: list[Issue] = []
    identifiers = list(resource.get("identifier") or [])
    if find_mrn(resource, context.mrn_system) is None:
        identifiers.append(mrn_identifier(mrn, context.mrn_system))
    identifier_rows = [
        _identifier_row(element, position, context, issues)
        for position, element in enumerate(identifiers)
    ]
    names = resource.get("name") or []
    name_rows = [
        split_element(element, NAME_COLUMNS, NAME_JSON) | {"position": position}
        for position, element in enumerate(names)
    ]
    for position, element in enumerate(names):
        _check_indexed_length(element.get("family"), f"Patient.name[{position}].family", issues)
    telecom_rows = [
        _telecom_row(element, position, context, issues)
        for position, element in enumerate(resource.get("telecom") or [])
    ]
    address_rows = [
        split_element(element, ADDRESS_COLUMNS, ADDRESS_JSON) | {"position": position}
        for position, element in enumerate(resource.get("address") or [])
    ]
    birth_date, precision = _birth_date_columns(resource.get("birthDate"), issues)
    if issues:
        raise PatientRuleError(issues)

    main: dict[str, Any] = {
        "id": resource_id,
        "version_id": version_id,
        "last_updated": last_updated,
        "deleted_at": None,
        "merged_into_id": None,
        "mrn": mrn,
        "gender": resource.get("gender"),
        "birth_date": birth_date,
        "birth_date_precision": precision,
        "active": resource.get("active"),
        "deceased_boolean": resource.get("deceasedBoolean"),
        "deceased_datetime": resource.get("deceasedDateTime"),
        "status": _status(resource),
        "remainder": dump_json(_remainder(resource)),
    }
    main |= _name_summary(name_rows, resource.get("name") or [])
    main |= _contact_summary(telecom_rows)
    main |= _address_summary(resource.get("address") or [])
    main |= _ssn_summary(identifier_rows)
    main |= derive_demographics(resource, context.phone_region)
    main |= search_columns(resource)
    rows = RowSet(
        main=main,
        children={
            "identifiers": identifier_rows,
            "identifier_types": _identifier_type_rows(identifiers),
            "names": name_rows,
            "telecoms": telecom_rows,
            "addresses": address_rows,
            "tokens": search_token_rows(resource),
            "references": search_reference_rows(resource),
        },
    )
    rows.children["match_keys"] = _match_key_rows(rows, context)
    return rows


def _match_key_rows(rows: RowSet, context: MappingContext) -> list[dict[str, Any]]:
    """The blocking keys Patient matching finds this patient under (read off the rows just
    made: phones are in E.164 and SSNs hashed there already)."""
    record = record_from_rows(rows, mrn_system=context.mrn_system)
    return [{"position": position, "key": key}
            for position, key in enumerate(blocking_keys(record))]


def _identifier_row(
    element: dict[str, Any], position: int, context: MappingContext, issues: list[Issue]
) -> dict[str, Any]:
    row = split_element(element, IDENTIFIER_COLUMNS) | {
        "position": position,
        "value_hash": None,
        "value_ciphertext": None,
    }
    for key in ("system", "value"):
        _check_indexed_length(element.get(key), f"Patient.identifier[{position}].{key}", issues)
    value = element.get("value")
    if element.get("system") == SSN_SYSTEM and value is not None:
        match = SSN_PATTERN.match(value)
        if match is None:
            issues.append(Issue(
                f"SSN '{_mask(value)}' must have the form ###-##-####",
                code="value",
                expression=(f"Patient.identifier[{position}].value",),
            ))
            return row
        value = "-".join(match.groups())  # nine bare digits are kept in the PRM's form
        row["value"] = None
        row["value_ciphertext"] = context.cipher.encrypt(value)
        row["value_hash"] = context.cipher.search_hash(value)
    return row


def _identifier_type_rows(identifiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per coding of each identifier's type (``identifier:of-type``)."""
    rows = [{"identifier_position": position, "system": system, "code": code}
            for position, element in enumerate(identifiers)
            for system, code in type_codings(element)]
    return [row | {"position": position} for position, row in enumerate(rows)]


def _check_indexed_length(value: Any, path: str, issues: list[Issue]) -> None:
    if isinstance(value, str) and len(value.encode()) > MAX_INDEXED_BYTES:
        issues.append(Issue(f"{path} is longer than {MAX_INDEXED_BYTES} bytes", code="too-long",
                            expression=(path,)))


def _mask(value: str) -> str:
    return "*" * max(len(value) - 4, 0) + value[-4:] if len(value) > 4 else "****"


def _telecom_row(
    element: dict[str, Any], position: int, context: MappingContext, issues: list[Issue]
) -> dict[str, Any]:
    row = split_element(element, TELECOM_COLUMNS) | {"position": position, "value_e164": None}
    value = element.get("value")
    system = element.get("system")
    if value is None:
        return row
    try:
        if system in ("phone", "fax", "sms"):
            row["value_e164"] = phone_to_e164(value, context.phone_region)
        elif system == "email":
            check_email(value)
    except ContactPointError as exc:
        issues.append(Issue(str(exc), code="value",
                            expression=(f"Patient.telecom[{position}].value",)))
    return row


def _birth_date_columns(value: str | None, issues: list[Issue]) -> tuple[date | None, str | None]:
    if value is None:
        return None, None
    parts = value.split("-")
    precision = {1: "year", 2: "month", 3: "day"}.get(len(parts), "day")
    try:
        start = date(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1,
                     int(parts[2]) if len(parts) > 2 else 1)
    except (ValueError, IndexError):
        issues.append(Issue(f"birthDate '{value}' is not a valid date", code="value",
                            expression=("Patient.birthDate",)))
        return None, None
    latest_today = (datetime.now(UTC) + timedelta(hours=14)).date()
    if start > latest_today:
        issues.append(Issue(f"birthDate {value} is in the future", code="value",
                            expression=("Patient.birthDate",)))
    return start, precision


def _status(resource: dict[str, Any]) -> str:
    if resource.get("deceasedBoolean") is True or resource.get("deceasedDateTime"):
        return "deceased"
    if resource.get("active") is False:
        return "inactive"
    return "active"


def _remainder(resource: dict[str, Any]) -> dict[str, Any]:
    return remainder_of(resource, OWNED_TOP_LEVEL)


def _name_summary(name_rows: list[dict[str, Any]], names: list[dict[str, Any]]) -> dict[str, Any]:
    chosen = next((name for name in names if name.get("use") == "official"), None)
    chosen = chosen or (names[0] if names else None)
    if chosen is None:
        return {"legal_name": None, "family_name": None, "given_name": None}
    given = " ".join(part for part in chosen.get("given") or [] if part)
    family = chosen.get("family")
    legal = chosen.get("text") or " ".join(part for part in (given, family) if part) or None
    return {"legal_name": legal, "family_name": family, "given_name": given or None}


def _contact_summary(telecom_rows: list[dict[str, Any]]) -> dict[str, Any]:
    phones = [row for row in telecom_rows if row["system"] in ("phone", "sms") and row["value"]]
    phones.sort(key=lambda row: (row["rank"] is None, row["rank"] or 0, row["position"]))
    primary = next((row["value_e164"] for row in phones if row["value_e164"]), None)
    email = next((row["value"] for row in telecom_rows
                  if row["system"] == "email" and row["value"]), None)
    return {"primary_phone": primary, "email": email}


def _address_summary(addresses: list[dict[str, Any]]) -> dict[str, Any]:
    first = addresses[0] if addresses else {}
    line = ", ".join(part for part in first.get("line") or [] if part)
    return {
        "address_line": line or None,
        "address_city": first.get("city"),
        "address_state": first.get("state"),
        "address_postal_code": first.get("postalCode"),
        "address_country": first.get("country"),
    }


def _ssn_summary(identifier_rows: list[dict[str, Any]]) -> dict[str, Any]:
    ssn = next((row for row in identifier_rows if row["value_ciphertext"]), None)
    return {
        "ssn_ciphertext": ssn["value_ciphertext"] if ssn else None,
        "ssn_hash": ssn["value_hash"] if ssn else None,
    }


# ------------------------------------------------------------------------------ read side


RESOURCE_COLUMNS = (
    "id", "version_id", "last_updated", "deleted_at", "remainder", "gender", "active",
    "deceased_boolean", "deceased_datetime", "birth_date", "birth_date_precision",
    *RACE_COLUMNS, *ETHNICITY_COLUMNS, *LANGUAGE_COLUMNS, *CONTACT_COLUMNS,
)
"""The main-row columns ``rows_to_resource`` reads (with ``deleted_at``, which says whether
the resource is live)."""
RESOURCE_CHILD_COLUMNS = {
    key: (*(column for _, column, _ in plan.columns), "extra",
          *(("value_ciphertext",) if key == "identifiers" else ()))
    for key, plan in (("identifiers", IDENTIFIER_PLAN), ("names", NAME_PLAN),
                      ("telecoms", TELECOM_PLAN), ("addresses", ADDRESS_PLAN))
}
"""The child rows and columns ``rows_to_resource`` reads, in element order."""


def rows_to_resource(rows: RowSet, context: MappingContext) -> dict[str, Any]:
    """The Patient the rows hold, with ``meta.versionId`` and ``meta.lastUpdated`` set."""
    main = rows.main
    resource: dict[str, Any] = load_json(main.get("remainder")) or {}
    resource["resourceType"] = RESOURCE_TYPE
    resource["id"] = main["id"]
    with_server_meta(resource, main)

    if isinstance(rows, ValueRows) and rows.child_columns is RESOURCE_CHILD_COLUMNS:
        identifiers, names, telecoms, addresses = _elements_from_values(rows.child_values,
                                                                        context)
    else:
        children = rows.children
        identifiers = [_identifier_element(row, context)
                       for row in children.get("identifiers", [])]
        names = [join_element(row, NAME_PLAN) for row in children.get("names", [])]
        telecoms = [join_element(row, TELECOM_PLAN) for row in children.get("telecoms", [])]
        addresses = [join_element(row, ADDRESS_PLAN)
                     for row in children.get("addresses", [])]
    for key, values in (("identifier", identifiers), ("name", names),
                        ("telecom", telecoms), ("address", addresses)):
        if values:
            resource[key] = values
    for key, column in (("gender", "gender"), ("active", "active"),
                        ("deceasedBoolean", "deceased_boolean"),
                        ("deceasedDateTime", "deceased_datetime")):
        value = main.get(column)
        if value is not None:
            resource[key] = bool(value) if column in ("active", "deceased_boolean") else value
    birth_date = _birth_date_text(main.get("birth_date"), main.get("birth_date_precision"))
    if birth_date:
        resource["birthDate"] = birth_date
    rebuild_demographics(resource, main, context.phone_region)
    return order_keys(resource, PATIENT_ORDER)


def _identifier_element(row: dict[str, Any], context: MappingContext) -> dict[str, Any]:
    return _with_clear_value(join_element(row, IDENTIFIER_PLAN), row.get("value_ciphertext"),
                             context)


def _with_clear_value(element: dict[str, Any], ciphertext: str | None,
                      context: MappingContext) -> dict[str, Any]:
    """An identifier element with its encrypted value (an SSN) decrypted into ``value``."""
    if not ciphertext:
        return element
    element["value"] = context.cipher.decrypt(ciphertext)
    return order_keys(element, IDENTIFIER_ORDER)


_VALUES_PLANS = {key: values_plan(plan, RESOURCE_CHILD_COLUMNS[key])
                 for key, plan in (("identifiers", IDENTIFIER_PLAN), ("names", NAME_PLAN),
                                   ("telecoms", TELECOM_PLAN), ("addresses", ADDRESS_PLAN))}
_CIPHERTEXT_POSITION = RESOURCE_CHILD_COLUMNS["identifiers"].index("value_ciphertext")


def _elements_from_values(
    child_values: dict[str, list[list[Any]]], context: MappingContext
) -> tuple[list[dict[str, Any]], ...]:
    """The identifier, name, telecom and address elements of child rows given as value lists
    in ``RESOURCE_CHILD_COLUMNS`` order: what the dict path gives, without the dicts."""
    identifier_plan = _VALUES_PLANS["identifiers"]
    identifiers = [_with_clear_value(join_values(values, identifier_plan),
                                     values[_CIPHERTEXT_POSITION], context)
                   for values in child_values.get("identifiers", ())]
    return (identifiers,
            *([join_values(values, _VALUES_PLANS[key]) for values in child_values.get(key, ())]
              for key in ("names", "telecoms", "addresses")))


def _birth_date_text(value: Any, precision: str | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat() if isinstance(value, date) else str(value)[:10]
    if precision == "year":
        return text[:4]
    if precision == "month":
        return text[:7]
    return text


__all__ = ["RESOURCE_CHILD_COLUMNS", "RESOURCE_COLUMNS", "MappingContext", "PatientRuleError",
           "format_instant", "resource_to_rows", "rows_to_resource"]
