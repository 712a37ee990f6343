"""Patient search parameters (R4): what backs each one, and the search values a Patient
puts in its ``patients`` columns (haystacks, date ranges) and in its token and reference rows.

Definitions: https://hl7.org/fhir/R4/patient.html#search and the Resource-level ``_id``,
``_lastUpdated``, ``_tag``, ``_profile``, ``_security``, ``_source``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jellyfish

from mappings.fhir_dates import DateValueError, date_range
from mappings.search_backing import (
    CodeColumn,
    DateRange,
    Haystack,
    IdColumn,
    IdentifierRows,
    ReferenceRows,
    SearchParameter,
    SetFlag,
    StatusFlag,
    TelecomRows,
    TokenRows,
)
from mappings.search_rows import ReferenceRows as ReferenceRowBuilder
from mappings.search_rows import TokenRows as TokenRowBuilder
from mappings.search_text import haystack, normalise
from storage.tables import HAYSTACKS, NAME_SORTS

GENDER_SYSTEM = "http://hl7.org/fhir/administrative-gender"
ADDRESS_USE_SYSTEM = "http://hl7.org/fhir/address-use"
ADDRESS_FIELDS = ("text", "city", "district", "state", "postalCode", "country")


_SORTED_BY = "_sort by the normalised (first usual or official, else first) name's"


def _string(column: str, sort: str | None = None, doc: str = "") -> SearchParameter:
    return SearchParameter("string", Haystack(f"{column}_search", f"{column}_exact"), sort, doc)


SORTS_FOLLOWING_MATCHES: dict[str, frozenset[str]] = {
    "name": frozenset({"family_sort", "given_sort", "name_sort"}),
    "family": frozenset({"family_sort", "name_sort"}),
    "given": frozenset({"given_sort"}),
}
"""The sort columns along which a name search's matches bunch together: ``name=smi`` matches
the Smiths, who sort side by side near the end of ``family_sort``. PostgreSQL expects matches
spread evenly along an index it can read in sort order and reads that index from the start
(``name=smi&_sort=family`` took 3.4 s at 1,000,000 patients); for these pairs the search
sorts its matches instead (``storage.sort_fence``)."""


PATIENT_SEARCH: dict[str, SearchParameter] = {
    "_id": SearchParameter("token", IdColumn(), "id", "Logical id"),
    "_lastUpdated": SearchParameter(
        "date", DateRange("last_updated", "last_updated"), "last_updated", "meta.lastUpdated"),
    "_tag": SearchParameter("token", TokenRows(), None, "meta.tag"),
    "_profile": SearchParameter("uri", TokenRows(), None, "meta.profile"),
    "_security": SearchParameter("token", TokenRows(), None, "meta.security"),
    "_source": SearchParameter("uri", TokenRows(), None, "meta.source"),
    "active": SearchParameter("token", CodeColumn("active", boolean=True), "active",
                              "Patient.active (true | false)"),
    "address": _string("address", "address_city",
                       "Any part of an address: text, line, city, district, state, postalCode, "
                       "country"),
    "address-city": _string("address_city", "address_city", "Patient.address.city"),
    "address-country": _string("address_country", "address_country",
                               "Patient.address.country"),
    "address-postalcode": _string("address_postalcode", "address_postal_code",
                                  "Patient.address.postalCode"),
    "address-state": _string("address_state", "address_state", "Patient.address.state"),
    "address-use": SearchParameter("token", TokenRows(), None, "Patient.address.use"),
    "birthdate": SearchParameter("date", DateRange("birth_date", "birth_date_end", is_date=True),
                                 "birth_date", "Patient.birthDate"),
    "death-date": SearchParameter("date", DateRange("death_low", "death_high"), "death_low",
                                  "Patient.deceasedDateTime"),
    "deceased": SearchParameter("token", StatusFlag("status", "deceased"), None,
                                "Patient.deceased[x] present and not false"),
    "email": SearchParameter("token", TelecomRows("email"), "email",
                             "Patient.telecom where system = email"),
    "family": _string("family", "family_sort", f"Patient.name.family; {_SORTED_BY} family"),
    "gender": SearchParameter("token", CodeColumn("gender", GENDER_SYSTEM), "gender",
                              "Patient.gender"),
    "general-practitioner": SearchParameter(
        "reference", ReferenceRows(("Organization", "Practitioner", "PractitionerRole")), None,
        "Patient.generalPractitioner"),
    "given": _string("given", "given_sort", f"Patient.name.given; {_SORTED_BY} given names"),
    "identifier": SearchParameter("token", IdentifierRows(), None,
                                  "Patient.identifier; SSNs match through their keyed hash; "
                                  ":of-type matches any coding of the identifier's type"),
    "language": SearchParameter("token", TokenRows(), "preferred_language",
                                "Patient.communication.language"),
    "link": SearchParameter("reference", ReferenceRows(("Patient", "RelatedPerson")), None,
                            "Patient.link.other"),
    "name": _string("name", "name_sort",
                    "Any part of a name: text, family, given, prefix, suffix; "
                    f"{_SORTED_BY} family then given names (else the text)"),
    "organization": SearchParameter("reference", ReferenceRows(("Organization",)), None,
                                    "Patient.managingOrganization"),
    "phone": SearchParameter("token", TelecomRows("phone"), "primary_phone",
                             "Patient.telecom where system = phone; numbers compare in E.164"),
    "phonetic": SearchParameter("string", Haystack("phonetic_search", "phonetic_search",
                                                   phonetic=True), None,
                                "Sounds like a family or given name (Metaphone)"),
    "telecom": SearchParameter("token", TelecomRows(), None, "Patient.telecom"),
    "merged": SearchParameter(
        "token", SetFlag("merged_into_id"), None,
        "Whether the patient was merged into another ($merge): true | false. Searches leave "
        "merged patients out unless this parameter is given"),
}


SEARCH_ONLY = frozenset({
    *(f"{name}_{kind}" for name in HAYSTACKS for kind in ("search", "exact")),
    *(f"{name}_sort" for name in NAME_SORTS),
    "phonetic_search", "birth_date_end", "death_low", "death_high", "tokens", "references",
    "match_keys", "identifier_types",
})
"""Columns and child rows that only serve search: derived, so left out of history snapshots."""


def search_columns(resource: dict[str, Any]) -> dict[str, Any]:
    """The ``patients`` search columns for ``resource``."""
    names = resource.get("name") or []
    addresses = resource.get("address") or []
    columns: dict[str, Any] = {}

    def put(column: str, fields: list[Any]) -> None:
        columns[f"{column}_search"] = haystack(fields, normalised=True)
        columns[f"{column}_exact"] = haystack(fields, normalised=False)

    families = [name.get("family") for name in names]
    givens = [given for name in names for given in name.get("given") or []]
    put("name", [part for name in names for part in _name_fields(name)])
    put("family", families)
    put("given", givens)
    put("address", [part for address in addresses for part in _address_fields(address)])
    put("address_city", [address.get("city") for address in addresses])
    put("address_state", [address.get("state") for address in addresses])
    put("address_postalcode", [address.get("postalCode") for address in addresses])
    put("address_country", [address.get("country") for address in addresses])
    columns["phonetic_search"] = haystack(
        [phonetic_code(word) for part in [*families, *givens] if isinstance(part, str)
         for word in normalise(part).split()], normalised=True)
    columns |= sort_columns(names)
    columns["birth_date_end"] = _birth_date_end(resource.get("birthDate"))
    columns["death_low"], columns["death_high"] = _death_range(resource.get("deceasedDateTime"))
    return columns


def phonetic_code(text: str) -> str:
    """Metaphone of the normalised text (``Smyth`` and ``Smith`` give ``SM0``)."""
    return str(jellyfish.metaphone(normalise(text)))


def sort_name(names: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The name ``_sort`` orders by: the first ``usual`` or ``official`` name, else the first
    name (R4 leaves the choice among repeating values to the server)."""
    chosen = next((name for name in names if name.get("use") in ("usual", "official")), None)
    return chosen or (names[0] if names else None)


def sort_columns(names: list[dict[str, Any]]) -> dict[str, str | None]:
    """``family_sort``, ``given_sort`` and ``name_sort`` (family then given, else the text):
    normalised, so case, accents and punctuation do not change the order."""
    chosen = sort_name(names) or {}
    family = normalise(str(chosen.get("family") or ""))
    given = normalise(" ".join(str(part) for part in chosen.get("given") or [] if part))
    name = " ".join(part for part in (family, given) if part) or normalise(
        str(chosen.get("text") or ""))
    return {"family_sort": family or None, "given_sort": given or None,
            "name_sort": name or None}


def search_token_rows(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the token child table: (param, system, code, text) per value."""
    tokens = TokenRowBuilder()
    tokens.meta(resource)
    tokens.codeable("language", [communication.get("language")
                                 for communication in resource.get("communication") or ()])
    for address in resource.get("address") or ():
        tokens.code("address-use", address.get("use"), ADDRESS_USE_SYSTEM)
    return tokens.rows


def search_reference_rows(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the reference child table: (param, target type, target id, url) per reference."""
    references = ReferenceRowBuilder()
    references.each("general-practitioner", resource.get("generalPractitioner") or ())
    references.add("organization", resource.get("managingOrganization"))
    references.each("link", (link.get("other") for link in resource.get("link") or ()))
    return references.rows


def _name_fields(name: dict[str, Any]) -> Iterator[Any]:
    yield name.get("text")
    yield name.get("family")
    yield from name.get("given") or ()
    yield from name.get("prefix") or ()
    yield from name.get("suffix") or ()


def _address_fields(address: dict[str, Any]) -> Iterator[Any]:
    yield from address.get("line") or ()
    for field in ADDRESS_FIELDS:
        yield address.get(field)


def _birth_date_end(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return date_range(value)[1].date()
    except DateValueError:
        return None


def _death_range(value: str | None) -> tuple[Any, Any]:
    if value is None:
        return None, None
    try:
        return date_range(value)
    except DateValueError:
        return None, None
