"""Concepts of bundled code systems: hierarchy both ways, properties, case sensitivity, and
codes known only from value sets for systems not bundled whole."""

from __future__ import annotations

from terminology.code_systems import code_system

CDC = "urn:oid:2.16.840.1.113883.6.238"


def test_parents_and_children_come_from_nesting() -> None:
    cdc = code_system(CDC)
    assert cdc is not None and cdc.complete
    hispanic = cdc.find("2135-2")
    assert hispanic is not None
    assert hispanic.parents == ("2133-7",)
    assert "2137-8" in hispanic.children
    assert "2137-8" in cdc.descendants("2133-7")


def test_abstract_property_is_read() -> None:
    cdc = code_system(CDC)
    assert cdc is not None
    assert cdc.find("1000-9").abstract  # type: ignore[union-attr]
    assert not cdc.find("2106-3").abstract  # type: ignore[union-attr]


def test_unknown_systems_are_none() -> None:
    assert code_system("http://example.org/nothing") is None


def test_language_tags_are_known_from_the_languages_value_set() -> None:
    languages = code_system("urn:ietf:bcp:47")
    assert languages is not None and not languages.complete
    german = languages.find("de")
    assert german is not None and german.display == "German"
    assert any(item.get("value") == "Deutsch" for item in german.designations)
    assert languages.find("DE") is not None  # tags are case-insensitive


def test_a_pinned_version_that_is_not_bundled_is_none() -> None:
    assert code_system("http://hl7.org/fhir/administrative-gender|3.0.2") is None
    assert code_system("http://hl7.org/fhir/administrative-gender|4.0.1") is not None
