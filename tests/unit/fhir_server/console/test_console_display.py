"""What the console shows of a Patient: SSNs never whole, names in registration order, the
elements a version changed."""

from __future__ import annotations

from fhir_server.console import display

SSN = "http://hl7.org/fhir/sid/us-ssn"
V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def test_ssn_is_masked_to_its_last_four_digits_by_system_or_type() -> None:
    patient = {"identifier": [
        {"system": SSN, "value": "123-45-6789"},
        {"type": {"coding": [{"system": V2, "code": "SS"}]}, "value": "987654321"},
        {"system": "urn:prm:mrn", "value": "MRN-2026000001"},
        {"system": "urn:other", "value": "X-1", "use": "old"}]}
    shown = display.identifiers(patient, "urn:prm:mrn")
    assert [(view.label, view.value) for view in shown] == [
        ("SSN", "•••-••-6789"), ("SSN", "•••-••-4321"), ("MRN", "MRN-2026000001"),
        ("urn:other", "X-1")]
    assert display.ssns(patient) == ["•••-••-6789", "•••-••-4321"]
    assert display.other_identifiers(patient, "urn:prm:mrn") == ["urn:other|X-1"]


def test_short_ssn_shows_no_digit() -> None:
    assert display.masked_ssn("12") == "•••-••-••••"


def test_display_name_is_family_then_given_from_the_official_name() -> None:
    patient = {"name": [{"use": "nickname", "given": ["Annie"]},
                        {"use": "official", "family": "Rivera", "given": ["Ana", "Lucia"]}]}
    assert display.display_name(patient) == "Rivera, Ana Lucia"
    assert display.display_name({"name": [{"text": "Ana Rivera"}]}) == "Ana Rivera"
    assert display.display_name({}) == "(no name)"


def test_changed_elements_ignore_meta() -> None:
    before = {"id": "a", "meta": {"versionId": "1"}, "gender": "female", "active": True}
    after = {"id": "a", "meta": {"versionId": "2"}, "gender": "other", "active": True,
             "link": []}
    assert display.changed_elements(before, after) == ["gender", "link"]
