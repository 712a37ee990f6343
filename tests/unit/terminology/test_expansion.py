"""ValueSet expansion and membership over the bundled content: whole systems, listed
concepts, hierarchy filters, excludes, imports, and syntax checks for MIME types and language
tags."""

from __future__ import annotations

from typing import Any

import pytest

from terminology.expansion import NotExpandable, contains, expand, matches, value_set

VS = "http://hl7.org/fhir/ValueSet/"
CDC = "urn:oid:2.16.840.1.113883.6.238"


def _bundled(url: str) -> dict[str, Any]:
    resource = value_set(url)
    assert resource is not None, url
    return resource


def _codes(url: str) -> list[str]:
    return [entry.code for entry in expand(_bundled(url))]


def test_a_whole_code_system_expands_in_its_order() -> None:
    assert _codes(VS + "administrative-gender") == ["male", "female", "other", "unknown"]


def test_nested_concepts_are_flattened() -> None:
    assert "maiden" in _codes(VS + "name-use")  # a child of 'old'


def test_listed_concepts_take_displays_from_their_code_system() -> None:
    entries = {entry.code: entry for entry in expand(_bundled(VS + "identifier-type"))}
    assert entries["MR"].display == "Medical record number"
    assert entries["MR"].system == "http://terminology.hl7.org/CodeSystem/v2-0203"


def test_is_a_filter_with_excludes() -> None:
    codes = _codes("http://hl7.org/fhir/us/core/ValueSet/detailed-race")
    assert "1004-1" in codes and "2106-3" not in codes  # American Indian; White excluded
    assert "2135-2" not in codes  # an ethnicity


def test_is_not_a_filter() -> None:
    codes = _codes(VS + "patient-contactrelationship")
    assert "O" not in codes and "C" in codes


def test_abstract_concepts_are_flagged() -> None:
    entry = next(e for e in expand(_bundled("http://hl7.org/fhir/us/core/ValueSet/"
                                            "detailed-race")) if e.code == "1000-9")
    assert entry.abstract


def test_codes_from_several_systems() -> None:
    entries = expand(_bundled("http://hl7.org/fhir/us/core/ValueSet/omb-race-category"))
    assert {entry.system for entry in entries} == {
        CDC, "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"}


def test_an_inline_value_set_importing_a_bundled_one() -> None:
    inline = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"valueSet": [VS + "administrative-gender"]}],
        "exclude": [{"system": "http://hl7.org/fhir/administrative-gender",
                     "concept": [{"code": "unknown"}]}]}}
    assert [entry.code for entry in expand(inline)] == ["male", "female", "other"]


def test_an_import_of_a_value_set_not_bundled_is_not_expandable() -> None:
    inline = {"resourceType": "ValueSet", "compose": {"include": [
        {"valueSet": ["http://example.org/ValueSet/none"]}]}}
    with pytest.raises(NotExpandable, match="not bundled"):
        expand(inline)


@pytest.mark.parametrize("url", [VS + "mimetypes", VS + "all-languages"])
def test_systems_too_large_to_list_are_not_expandable(url: str) -> None:
    with pytest.raises(NotExpandable, match="checked by syntax"):
        expand(_bundled(url))


@pytest.mark.parametrize(("code", "valid"), [
    ("application/pdf", True), ("text/plain; charset=UTF-8", True),
    ("application/fhir+json", True), ('multipart/form-data; boundary="a b"', True),
    ("pdf", False), ("image jpeg", False), ("text/", False), ("/plain", False)])
def test_mime_types_are_checked_by_syntax(code: str, valid: bool) -> None:
    assert (contains(_bundled(VS + "mimetypes"), system=None, code=code) is not None) is valid


@pytest.mark.parametrize(("code", "valid"), [
    ("en", True), ("en-US", True), ("zh-Hant-TW", True), ("es-419", True),
    ("x-private", True), ("english", True), ("e", False), ("en_US", False), ("en-", False)])
def test_language_tags_are_checked_by_syntax(code: str, valid: bool) -> None:
    found = contains(_bundled(VS + "all-languages"), system=None, code=code)
    assert (found is not None) is valid


def test_a_listed_language_keeps_its_display_under_all_languages() -> None:
    found = contains(_bundled(VS + "all-languages"), system="urn:ietf:bcp:47", code="de")
    assert found is not None and found.display == "German"


def test_common_languages_are_listed_not_syntax_checked() -> None:
    assert contains(_bundled(VS + "languages"), system=None, code="en-US") is not None
    assert contains(_bundled(VS + "languages"), system=None, code="tlh") is None


def test_membership_respects_the_system() -> None:
    gender = _bundled(VS + "administrative-gender")
    assert contains(gender, system="http://hl7.org/fhir/administrative-gender", code="male")
    assert contains(gender, system="http://example.org/other", code="male") is None


def test_the_text_filter_matches_words_in_code_display_or_designation() -> None:
    entries = expand(_bundled(VS + "languages"))
    assert [e.code for e in entries if matches(e, "english united")] == ["en-US"]
    assert "de" in [e.code for e in entries if matches(e, "DUITS")]  # Dutch designation
