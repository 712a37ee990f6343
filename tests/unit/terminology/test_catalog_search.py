"""Search over the bundled terminology resources (pure)."""

from __future__ import annotations

import pytest

from terminology.catalog_search import BadSearch, parse_criteria, search


def _ids(resource_type: str, *pairs: tuple[str, str]) -> list[str]:
    return [resource["id"] for resource in search(resource_type, parse_criteria(pairs))]


def test_url_matches_exactly() -> None:
    assert _ids("ValueSet", ("url", "http://hl7.org/fhir/ValueSet/link-type")) == ["link-type"]
    assert _ids("ValueSet", ("url", "http://hl7.org/fhir/ValueSet/link")) == []


def test_name_starts_with_ignoring_case() -> None:
    assert _ids("CodeSystem", ("name", "administrativeg")) == ["administrative-gender"]


def test_name_contains_and_exact_modifiers() -> None:
    assert "omb-race-category" in _ids("ValueSet", ("name:contains", "race"))
    assert _ids("ValueSet", ("name:exact", "administrativegender")) == []
    assert _ids("ValueSet", ("name:exact", "AdministrativeGender")) == ["administrative-gender"]


def test_comma_is_or_and_repetition_is_and() -> None:
    both = _ids("ValueSet", ("_id", "link-type,name-use"))
    assert both == ["link-type", "name-use"]
    assert _ids("ValueSet", ("_id", "link-type,name-use"), ("name", "Name")) == ["name-use"]


def test_concept_maps_are_searchable() -> None:
    assert "prm-message-delivery-status" in _ids("ConceptMap", ("status", "active"))


def test_unknown_modifier_is_refused() -> None:
    with pytest.raises(BadSearch, match="not supported"):
        parse_criteria([("url:below", "http://hl7.org")])
