"""Hypothesis strategies for valid R4 Patients, shared by the mapping and HTTP property tests."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
RACE_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
ETHNICITY_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
CDC_SYSTEM = "urn:oid:2.16.840.1.113883.6.238"
JSON_COLUMNS = ("remainder", "extra", "given", "prefix", "suffix", "line")

# ---------------------------------------------------------------------------- strategies

ACCENTED = "áàâäãåæçéèêëíìîïñóòôöõøœúùûüýÿßÁÉÍÑÓÚÜÇÆØŒŁłŚśŻżĞğŞşİıЖжЯяΩω"
_letter = st.one_of(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    st.sampled_from(ACCENTED),
    st.characters(categories=["Lu", "Ll", "Lo"]),
)
_word = st.text(_letter, min_size=1, max_size=10)
# "O'Brien", "Smith-Jones", "van der Berg", "D'Angelo"
name_parts = st.builds(
    lambda first, separator, rest: first + separator + rest if rest else first,
    _word, st.sampled_from(["'", "-", " ", "\u2019"]), st.one_of(st.just(""), _word),
)
_years = st.integers(1900, 2020)


def _digits(count: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=count, max_size=count)


def _coding(system: str, codes: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"system": st.just(system), "code": st.sampled_from(codes)},
                                 optional={"display": name_parts})


phones = st.one_of(
    st.builds("({}) {}-{}".format, st.sampled_from(["617", "212", "415", "857"]),
              _digits(3).filter(lambda d: d[0] not in "01"), _digits(4)),
    st.builds("{}-{}-{}".format, st.sampled_from(["617", "312"]), st.just("495"), _digits(4)),
    st.builds("+1 {} {} {}".format, st.sampled_from(["617", "646"]), st.just("555"), _digits(4)),
    st.builds("(0{}) {} {}".format, st.sampled_from("2378"), _digits(4), _digits(4)),
    st.builds("+31 20 {} {}".format, _digits(3), _digits(4)),
    st.builds("555-{}".format, _digits(4)),
)
emails = st.builds(
    "{}{}@{}".format,
    st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"\.[a-z0-9]{1,5}", fullmatch=True)),
    st.sampled_from(["example.org", "example.com", "hospital.example.org", "mail.co.uk"]),
)
telecoms = st.one_of(
    st.fixed_dictionaries(
        {"system": st.sampled_from(["phone", "sms", "fax"]), "value": phones},
        optional={"use": st.sampled_from(["home", "work", "mobile", "temp", "old"]),
                  "rank": st.integers(1, 5)}),
    st.fixed_dictionaries(
        {"system": st.just("email"), "value": emails},
        optional={"use": st.sampled_from(["home", "work"]), "rank": st.integers(1, 5),
                  "period": st.just({"start": "2019-01-01"})}),
)
human_names = st.fixed_dictionaries(
    {},
    optional={
        "use": st.sampled_from(["official", "usual", "nickname", "maiden", "old"]),
        "text": st.builds(" ".join, st.lists(name_parts, min_size=1, max_size=3)),
        "family": name_parts,
        "given": st.lists(name_parts, min_size=1, max_size=3),
        "prefix": st.lists(st.sampled_from(["Dr.", "Mr.", "Ms.", "Mx."]), min_size=1,
                           max_size=1),
        "suffix": st.lists(st.sampled_from(["Jr.", "III", "PhD"]), min_size=1, max_size=1),
    },
).filter(lambda name: bool({"text", "family", "given"} & name.keys()))
identifiers = st.one_of(
    st.fixed_dictionaries(
        {"system": st.sampled_from(["http://hospital.example.org/ids",
                                    "urn:oid:2.16.840.1.113883.4.3.25"]),
         "value": st.from_regex(r"[A-Z]{1,3}-?[0-9]{1,8}", fullmatch=True)},
        optional={"use": st.sampled_from(["usual", "official", "secondary"]),
                  "type": st.fixed_dictionaries({"coding": st.lists(_coding(
                      "http://terminology.hl7.org/CodeSystem/v2-0203", ["DL", "PPN", "MR"]),
                      min_size=1, max_size=1)})}),
    st.fixed_dictionaries(
        {"system": st.just(SSN_SYSTEM),
         "value": st.builds("{}-{}-{}".format, _digits(3), _digits(2), _digits(4))},
        optional={"use": st.just("official")}),
)
addresses = st.fixed_dictionaries(
    {},
    optional={
        "use": st.sampled_from(["home", "work", "temp", "old", "billing"]),
        "type": st.sampled_from(["postal", "physical", "both"]),
        "line": st.lists(st.builds("{} {}".format, st.integers(1, 9999), name_parts),
                         min_size=1, max_size=2),
        "city": name_parts,
        "district": name_parts,
        "state": st.sampled_from(["MA", "NY", "VIC", "Île-de-France"]),
        "postalCode": st.from_regex(r"[0-9]{5}", fullmatch=True),
        "country": st.sampled_from(["US", "AU", "FR", "NL"]),
    },
).filter(bool)
birth_dates = st.one_of(
    st.dates(date(1900, 1, 1), date(2020, 12, 31)).map(date.isoformat),
    _years.map("{:04d}".format),
    st.builds("{:04d}-{:02d}".format, _years, st.integers(1, 12)),
)
deceased_date_times = st.one_of(
    st.dates(date(1990, 1, 1), date(2020, 12, 31)).map(date.isoformat),
    st.datetimes(datetime(1990, 1, 1), datetime(2020, 12, 31),
                 timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]))
    .map(lambda moment: moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")),
)


def _category(url: str, codes: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    omb = st.fixed_dictionaries({"url": st.just("ombCategory"),
                                 "valueCoding": _coding(CDC_SYSTEM, codes)})
    text = st.fixed_dictionaries({"url": st.just("text"), "valueString": name_parts})
    parts = st.one_of(st.tuples(omb), st.tuples(text), st.tuples(omb, text)).map(list)
    return st.fixed_dictionaries({"extension": parts, "url": st.just(url)})


extensions = st.one_of(
    _category(RACE_URL, ["1002-5", "2028-9", "2054-5", "2076-8", "2106-3", "UNK"]),
    _category(ETHNICITY_URL, ["2135-2", "2186-5"]),
    st.fixed_dictionaries({"url": st.just("http://example.org/fhir/StructureDefinition/note"),
                           "valueString": name_parts}),
    st.fixed_dictionaries({"url": st.just("http://example.org/fhir/StructureDefinition/flag"),
                           "valueBoolean": st.booleans()}),
    st.fixed_dictionaries({"url": st.just("http://example.org/fhir/StructureDefinition/count"),
                           "valueInteger": st.integers(-1000, 1000)}),
)
communications = st.fixed_dictionaries(
    {"language": st.fixed_dictionaries(
        {"coding": st.lists(_coding("urn:ietf:bcp:47", ["en", "es", "fr-CA", "pt-BR", "vi"]),
                            min_size=1, max_size=1)},
        optional={"text": name_parts})},
    optional={"preferred": st.booleans()},
)
contacts = st.fixed_dictionaries(
    {"name": human_names},
    optional={
        "relationship": st.lists(st.fixed_dictionaries({"coding": st.lists(_coding(
            "http://terminology.hl7.org/CodeSystem/v2-0131", ["C", "E", "N", "U"]),
            min_size=1, max_size=1)}, optional={"text": name_parts}), min_size=1, max_size=1),
        "telecom": st.lists(telecoms, min_size=1, max_size=2),
        "gender": st.sampled_from(["female", "male", "other", "unknown"]),
    },
)
narratives = st.builds(
    lambda text: {"status": "generated",
                  "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{html.escape(text)}</div>'},
    st.builds(" ".join, st.lists(name_parts, min_size=1, max_size=4)),
)
_deceased = st.one_of(
    st.just({}),
    st.builds(lambda value: {"deceasedBoolean": value}, st.booleans()),
    st.builds(lambda value: {"deceasedDateTime": value}, deceased_date_times),
)
_multiple_birth = st.one_of(
    st.just({}),
    st.builds(lambda value: {"multipleBirthBoolean": value}, st.booleans()),
    st.builds(lambda value: {"multipleBirthInteger": value}, st.integers(1, 5)),
)


def _lists(elements: st.SearchStrategy[Any], max_size: int = 3) -> st.SearchStrategy[list[Any]]:
    return st.lists(elements, min_size=1, max_size=max_size)


@st.composite
def valid_patients(draw: st.DrawFn) -> dict[str, Any]:
    """A valid R4 Patient that the PRM rules accept (no MRN: the server would add one)."""
    resource: dict[str, Any] = {"resourceType": "Patient"}
    resource |= draw(st.fixed_dictionaries({}, optional={
        "meta": st.just({"tag": [{"system": "http://example.org/tags", "code": "vip"}]}),
        "text": narratives,
        "extension": _lists(extensions),
        "identifier": _lists(identifiers),
        "active": st.booleans(),
        "name": _lists(human_names),
        "telecom": _lists(telecoms, max_size=4),
        "gender": st.sampled_from(["female", "male", "other", "unknown"]),
        "birthDate": birth_dates,
        "address": _lists(addresses, max_size=2),
        "maritalStatus": st.fixed_dictionaries({"coding": _lists(_coding(
            "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", ["M", "S", "D", "W"]),
            max_size=1)}),
        "contact": _lists(contacts, max_size=2),
        "communication": _lists(communications, max_size=2),
        "generalPractitioner": st.just([{"reference": "Practitioner/ehr-7"}]),
        "managingOrganization": st.just({"reference": "Organization/ehr-1",
                                         "display": "General Hospital"}),
    }))
    resource |= draw(_deceased)
    resource |= draw(_multiple_birth)
    return resource


# -------------------------------------------------------------------------------- tests
