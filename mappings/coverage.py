"""Coverage <-> ``patient_insurances``, lossless. The PRM keeps a patient's insurance in three
slots (primary, secondary, tertiary) with the provider's name, the policy number and the group
number; FHIR says the same with ``order`` 1..3, ``payor`` (a Reference whose ``display`` is the
provider), an ``identifier`` in ``urn:prm:insurance-policy`` and a ``class`` of type ``group``.
Columns own ``status`` and ``order``; the PRM and search columns are derived on write; every
other element is kept in ``remainder``. https://hl7.org/fhir/R4/coverage.html"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fhir_server.errors import InvalidResource, Issue
from mappings.document_reference_search import common_parameters
from mappings.owned_columns import OwnedColumnsMapping
from mappings.search_backing import (
    CodeColumn,
    Haystack,
    ReferenceRows,
    SearchParameter,
    TokenRows,
)
from mappings.search_rows import ReferenceRows as ReferenceRowBuilder
from mappings.search_rows import TokenRows as TokenRowBuilder
from mappings.search_rows import listed
from mappings.search_text import haystack
from storage.row_set import RowSet

POLICY_SYSTEM = "urn:prm:insurance-policy"
CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/coverage-class"
STATUS_SYSTEM = "http://hl7.org/fhir/fm-status"
SLOTS = {1: "primary", 2: "secondary", 3: "tertiary"}
PAYOR_TYPES = ("Organization", "Patient", "RelatedPerson")
_PATIENT = re.compile(r"^Patient/([A-Za-z0-9\-.]{1,64})$")

ORDER = (
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
    "modifierExtension", "identifier", "status", "type", "policyHolder", "subscriber",
    "subscriberId", "beneficiary", "dependent", "relationship", "period", "payor", "class",
    "order", "network", "costToBeneficiary", "subrogation", "contract",
)


def _reference(targets: tuple[str, ...], doc: str) -> SearchParameter:
    return SearchParameter("reference", ReferenceRows(targets), None, doc)


def _string(column: str, doc: str) -> SearchParameter:
    return SearchParameter("string", Haystack(f"{column}_search", f"{column}_exact"), None, doc)


COVERAGE_SEARCH: dict[str, SearchParameter] = {
    **common_parameters(),
    "beneficiary": _reference(("Patient",), "Coverage.beneficiary"),
    "class-type": SearchParameter("token", TokenRows(), None, "Coverage.class.type"),
    "class-value": _string("class", "Coverage.class.value (the group number is one)"),
    "dependent": _string("dependent", "Coverage.dependent"),
    "identifier": SearchParameter("token", TokenRows(of_type=True), None,
                                  f"Coverage.identifier (the policy number: {POLICY_SYSTEM})"),
    "patient": _reference(("Patient",), "Coverage.beneficiary"),
    "payor": _reference(PAYOR_TYPES, "Coverage.payor"),
    "payor-name": _string("payor", "Coverage.payor.display (the PRM's provider name; "
                                   "not an R4 parameter)"),
    "policy-holder": _reference(("Patient", "RelatedPerson", "Organization"),
                                "Coverage.policyHolder"),
    "status": SearchParameter("token", CodeColumn("status", STATUS_SYSTEM), "status",
                              "Coverage.status"),
    "subscriber": _reference(("Patient", "RelatedPerson"), "Coverage.subscriber"),
    "type": SearchParameter("token", TokenRows(), None, "Coverage.type"),
}
SEARCH_ONLY = frozenset({"tokens", "references"})


def _rules(resource: dict[str, Any]) -> None:
    """The PRM's rules: a Patient beneficiary, and one of its three slots when ordered."""
    issues = []
    beneficiary = (resource.get("beneficiary") or {}).get("reference")
    if not isinstance(beneficiary, str) or not _PATIENT.match(beneficiary):
        issues.append(Issue("Coverage.beneficiary must reference a Patient of this server "
                            "(Patient/{id}): the PRM keeps insurance with the patient",
                            code="value", expression=("Coverage.beneficiary",)))
    order = resource.get("order")
    if order is not None and order not in SLOTS:
        issues.append(Issue("Coverage.order must be 1 (primary), 2 (secondary) or 3 "
                            "(tertiary): the PRM keeps three insurances per patient",
                            code="value", expression=("Coverage.order",)))
    if issues:
        raise InvalidResource(issues[0].diagnostics, issues=issues)


def _columns(resource: dict[str, Any]) -> dict[str, Any]:
    _rules(resource)
    beneficiary = _PATIENT.match(resource["beneficiary"]["reference"])
    payors = [str(payor.get("display")) for payor in listed(resource.get("payor"))
              if isinstance(payor, dict) and payor.get("display")]
    identifiers = [item for item in listed(resource.get("identifier")) if isinstance(item, dict)]
    policy = next((item.get("value") for item in identifiers
                   if item.get("system") == POLICY_SYSTEM), None)
    classes = [item for item in listed(resource.get("class")) if isinstance(item, dict)]
    group = next((item.get("value") for item in classes
                  if any(coding.get("code") == "group"
                         for coding in (item.get("type") or {}).get("coding") or [])), None)
    type_code = next((coding.get("code") for coding in
                      (resource.get("type") or {}).get("coding") or []), None)
    return {
        "patient_id": beneficiary.group(1) if beneficiary else None,
        "insurance_type": SLOTS.get(resource.get("order")),  # type: ignore[arg-type]
        "provider_name": payors[0] if payors else None,
        "policy_number": policy, "group_number": group, "type_code": type_code,
        **search_haystacks(resource),
    }


def search_haystacks(resource: dict[str, Any]) -> dict[str, str | None]:
    """The string parameters' haystack columns (payor-name, class-value, dependent)."""
    payors = [str(payor.get("display")) for payor in listed(resource.get("payor"))
              if isinstance(payor, dict) and payor.get("display")]
    class_values = [item.get("value") for item in listed(resource.get("class"))
                    if isinstance(item, dict)]
    dependent = resource.get("dependent")
    return {
        "payor_search": haystack(payors, normalised=True),
        "payor_exact": haystack(payors, normalised=False),
        "class_search": haystack(class_values, normalised=True),
        "class_exact": haystack(class_values, normalised=False),
        "dependent_search": haystack([dependent], normalised=True),
        "dependent_exact": haystack([dependent], normalised=False),
    }


def _children(resource: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    tokens = TokenRowBuilder()
    tokens.meta(resource)
    tokens.identifier("identifier", listed(resource.get("identifier")))
    tokens.codeable("type", [resource.get("type")])
    tokens.codeable("class-type", [item.get("type") for item in listed(resource.get("class"))
                                   if isinstance(item, dict)])
    references = ReferenceRowBuilder()
    references.add("beneficiary", resource.get("beneficiary"))
    references.add("patient", resource.get("beneficiary"), only_types=("Patient",))
    references.each("payor", listed(resource.get("payor")))
    references.add("policy-holder", resource.get("policyHolder"))
    references.add("subscriber", resource.get("subscriber"))
    return {"tokens": tokens.rows, "references": references.rows}


class CoverageMapping:
    """Coverage as the mapped repository uses it."""

    resource_type = "Coverage"
    search_parameters = COVERAGE_SEARCH
    search_only = SEARCH_ONLY

    def __init__(self) -> None:
        self._mapping = OwnedColumnsMapping("Coverage", ORDER,
                                            {"status": "status", "order": "coverage_order"},
                                            _columns, _children)

    def to_rows(self, resource: dict[str, Any], *, resource_id: str, version_id: int,
                last_updated: datetime, facts: Any = None) -> RowSet:
        return self._mapping.to_rows(resource, resource_id=resource_id, version_id=version_id,
                                     last_updated=last_updated)

    def to_resource(self, rows: RowSet) -> dict[str, Any]:
        return self._mapping.to_resource(rows)
