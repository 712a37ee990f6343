"""A patient as the matcher sees it: normalised demographics, built from a FHIR Patient (the
query, or a stored patient's resource)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhir_server.matching import normalise
from mappings.contact_points import ContactPointError, phone_to_e164
from mappings.elements import load_json
from storage.row_set import RowSet
from terminology import systems

_SSN = re.compile(r"^(\d{3})-?(\d{2})-?(\d{4})$")
IGNORED_IDENTIFIER_SYSTEMS = frozenset({systems.SSN})


@dataclass(frozen=True)
class MatchRecord:
    """Normalised demographics; empty values mean "not known" (never "disagrees")."""

    resource_id: str | None = None
    given: str = ""
    family: str = ""
    other_given: tuple[str, ...] = ()
    birth_date: date | None = None
    gender: str = ""
    phones: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    ssn_hash: str = ""
    identifiers: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    postcode: str = ""
    house_number: str = ""
    street: str = ""
    city: str = ""

    @property
    def fields_known(self) -> int:
        return sum(bool(value) for value in (self.given, self.family, self.birth_date,
                                             self.phones, self.emails, self.ssn_hash,
                                             self.postcode))


def _official_name(resource: dict[str, Any]) -> dict[str, Any]:
    names = [n for n in resource.get("name") or [] if isinstance(n, dict)]
    for wanted in ("official", "usual", None):
        for entry in names:
            if wanted is None or entry.get("use") == wanted:
                return entry
    return {}


def record_from_resource(
    resource: dict[str, Any], *, phone_region: str, hash_ssn: Callable[[str], str],
    mrn_system: str | None = None,
) -> MatchRecord:
    """The match record of a Patient resource; values that do not parse are left out."""
    official = _official_name(resource)
    givens = [normalise.name(g) for g in official.get("given") or [] if isinstance(g, str)]
    family = normalise.name(official.get("family") if isinstance(official.get("family"), str)
                            else None)
    if not family and official.get("text"):
        parts = normalise.name(official["text"]).split()
        givens, family = (parts[:-1], parts[-1]) if len(parts) > 1 else (givens, family)
    birth = None
    if isinstance(resource.get("birthDate"), str) and len(resource["birthDate"]) == 10:
        try:
            birth = date.fromisoformat(resource["birthDate"])
        except ValueError:
            birth = None
    phones: set[str] = set()
    emails: set[str] = set()
    for telecom in resource.get("telecom") or []:
        value = telecom.get("value") if isinstance(telecom, dict) else None
        if not isinstance(value, str):
            continue
        if telecom.get("system") == "email":
            emails.add(value.strip().lower())
        elif telecom.get("system") in ("phone", "sms", None):
            try:
                e164 = phone_to_e164(value, phone_region)
            except ContactPointError:
                e164 = None
            if e164:
                phones.add(e164)
    ssn_hash = ""
    identifiers: set[tuple[str, str]] = set()
    for identifier in resource.get("identifier") or []:
        if not isinstance(identifier, dict):
            continue
        system, value = identifier.get("system"), identifier.get("value")
        if not isinstance(value, str) or not isinstance(system, str):
            continue
        if system == systems.SSN:
            match = _SSN.match(value.strip())
            if match:
                ssn_hash = hash_ssn("-".join(match.groups()))
        elif system != mrn_system:
            identifiers.add((system, value.strip()))
    address = next((a for a in resource.get("address") or [] if isinstance(a, dict)), {})
    lines = [line for line in address.get("line") or [] if isinstance(line, str)]
    number, street = normalise.street(lines[0] if lines else None)
    postcode = str(address.get("postalCode") or "").strip()[:5].lower()
    return MatchRecord(
        resource_id=resource.get("id"),
        given=givens[0] if givens else "",
        family=family,
        other_given=tuple(givens[1:]),
        birth_date=birth,
        gender=str(resource.get("gender") or ""),
        phones=frozenset(phones),
        emails=frozenset(emails),
        ssn_hash=ssn_hash,
        identifiers=frozenset(identifiers),
        postcode=postcode,
        house_number=number,
        street=street,
        city=normalise.name(address.get("city") if isinstance(address.get("city"), str)
                            else None),
    )


def record_from_rows(rows: RowSet, *, mrn_system: str | None = None) -> MatchRecord:
    """The same record as ``record_from_resource`` gives for the resource these rows hold,
    read straight from the PRM rows (no phone parsing, no decryption: it is several times
    cheaper for scoring many candidates)."""
    main, children = rows.main, rows.children
    names = children.get("names") or []
    chosen: dict[str, Any] = {}
    for wanted in ("official", "usual", None):
        chosen = next((n for n in names if wanted is None or n.get("use") == wanted), {})
        if chosen:
            break
    givens = [normalise.name(g) for g in load_json(chosen.get("given")) or []
              if isinstance(g, str)]
    family = normalise.name(chosen.get("family"))
    if not family and chosen.get("text"):
        parts = normalise.name(chosen["text"]).split()
        givens, family = (parts[:-1], parts[-1]) if len(parts) > 1 else (givens, family)
    birth = main.get("birth_date")
    if isinstance(birth, str):
        birth = date.fromisoformat(birth) if len(birth) == 10 else None
    if main.get("birth_date_precision") not in (None, "day"):
        birth = None
    phones = frozenset(t["value_e164"] for t in children.get("telecoms") or []
                       if t.get("value_e164") and t.get("system") in ("phone", "sms", None))
    emails = frozenset(str(t["value"]).strip().lower() for t in children.get("telecoms") or []
                       if t.get("system") == "email" and t.get("value"))
    ssn_hash = ""
    identifiers: set[tuple[str, str]] = set()
    for identifier in children.get("identifiers") or []:
        system = identifier.get("system")
        if system == systems.SSN:
            ssn_hash = identifier.get("value_hash") or ssn_hash
        elif system and identifier.get("value") and system != mrn_system:
            identifiers.add((system, str(identifier["value"]).strip()))
    address = next(iter(children.get("addresses") or []), {})
    lines = [line for line in load_json(address.get("line")) or [] if isinstance(line, str)]
    number, street = normalise.street(lines[0] if lines else None)
    return MatchRecord(
        resource_id=main.get("id"), given=givens[0] if givens else "", family=family,
        other_given=tuple(givens[1:]), birth_date=birth, gender=str(main.get("gender") or ""),
        phones=phones, emails=emails, ssn_hash=ssn_hash, identifiers=frozenset(identifiers),
        postcode=str(address.get("postal_code") or "").strip()[:5].lower(),
        house_number=number, street=street, city=normalise.name(address.get("city")))
