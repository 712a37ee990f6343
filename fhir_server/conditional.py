"""Criteria of conditional interactions (``If-None-Exist: identifier=http://x|123``) parsed
and matched. https://hl7.org/fhir/R4/http.html#ccreate"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import parse_qsl

from fhir_server.errors import InvalidRequest
from mappings.contact_points import ContactPointError, phone_to_e164
from storage.patient_lookup import LOOKUP_PARAMETERS, Criterion

_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def parse_criteria(query: str, phone_region: str) -> list[Criterion]:
    """Typed criteria; InvalidRequest naming an unsupported parameter or a bad value."""
    query = query.split("?", 1)[1] if "?" in query else query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        raise InvalidRequest("If-None-Exist has no search criteria")
    criteria: list[Criterion] = []
    for name, value in pairs:
        if name not in LOOKUP_PARAMETERS:
            raise InvalidRequest(
                f"If-None-Exist parameter '{name}' is not supported; use one of "
                f"{', '.join(LOOKUP_PARAMETERS)}"
            )
        if not value:
            raise InvalidRequest(f"If-None-Exist parameter '{name}' has no value")
        if _CONTROL_CHARACTER.search(value):
            raise InvalidRequest(f"If-None-Exist parameter '{name}' contains a control character")
        criteria.append(_criterion(name, value, phone_region))
    return criteria


def _criterion(name: str, value: str, phone_region: str) -> Criterion:
    if name == "identifier" and "|" in value:
        system, _, code = value.partition("|")
        if not code:
            raise InvalidRequest("If-None-Exist identifier needs a value after '|'")
        return Criterion(name, code, system or None)
    if name == "birthdate":
        try:
            date.fromisoformat(value)
        except ValueError:
            raise InvalidRequest(f"If-None-Exist birthdate '{value}' is not a YYYY-MM-DD date") from None
    if name == "phone":
        try:
            value = phone_to_e164(value, phone_region) or value
        except ContactPointError as exc:
            raise InvalidRequest(f"If-None-Exist phone: {exc}") from None
    return Criterion(name, value)
