"""The bundled terminology: what the package ships is loadable, unique, and the same as the
official HL7 and US Core files it was copied from (apart from the narrative)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terminology.content import TYPES, catalog
from terminology.messaging import CHANNELS, DELIVERY_STATES, STATUS_REASONS

BOUND_BY_THE_SERVED_TYPES = (
    "administrative-gender", "name-use", "contact-point-system", "contact-point-use",
    "address-use", "address-type", "identifier-use", "link-type", "document-reference-status",
    "composition-status", "document-relationship-type", "event-status", "request-status",
    "request-priority", "communication-category", "v3-ParticipationMode", "identifier-type",
    "languages", "mimetypes", "omb-race-category", "omb-ethnicity-category", "detailed-race",
    "detailed-ethnicity", "narrative-status")


def test_every_bundled_resource_has_an_id_a_url_and_a_status() -> None:
    for resource_type in TYPES:
        for resource in catalog().of_type(resource_type):
            assert resource["resourceType"] == resource_type
            assert resource["id"] and resource["url"] and resource["status"], resource["id"]


def test_canonical_urls_are_unique_per_type() -> None:
    for resource_type in TYPES:
        urls = [(r["url"], r.get("version")) for r in catalog().of_type(resource_type)]
        assert len(urls) == len(set(urls)), resource_type


@pytest.mark.parametrize("value_set_id", BOUND_BY_THE_SERVED_TYPES)
def test_the_value_sets_the_served_types_bind_to_are_bundled(value_set_id: str) -> None:
    assert catalog().by_id("ValueSet", value_set_id) is not None


def test_lookup_by_url_and_version() -> None:
    url = "http://hl7.org/fhir/ValueSet/administrative-gender"
    assert catalog().by_url("ValueSet", url)["id"] == "administrative-gender"  # type: ignore[index]
    assert catalog().by_url("ValueSet", url + "|4.0.1") is not None
    assert catalog().by_url("ValueSet", url, "3.0.2") is None


def test_hl7_resources_equal_the_official_files_but_their_narrative(shared_data: Path) -> None:
    official = json.loads((shared_data / "valuesets" / "terminology-r4.json").read_text())
    compared = 0
    for entry in official["entry"]:
        resource = entry["resource"]
        bundled = catalog().by_id(resource["resourceType"], resource["id"])
        if bundled is None:
            continue
        assert bundled == {k: v for k, v in resource.items() if k != "text"}, resource["id"]
        compared += 1
    assert compared == len(official["entry"]) - 2  # c80-doc-typecodes, security-labels


def test_us_core_resources_equal_the_official_files(shared_data: Path) -> None:
    folder = shared_data / "valuesets" / "us-core-3.1.0"
    for resource_id in ("cdcrec", "omb-race-category", "detailed-ethnicity", "birthsex"):
        path = next(folder.glob(f"*-{resource_id}.json"))
        resource = json.loads(path.read_text())
        bundled = catalog().by_id(resource["resourceType"], resource_id)
        assert bundled == {k: v for k, v in resource.items() if k != "text"}


def test_prm_code_systems_hold_the_enums_the_code_uses() -> None:
    def codes(resource_id: str) -> list[str]:
        system = catalog().by_id("CodeSystem", resource_id)
        assert system is not None
        return [concept["code"] for concept in system["concept"]]

    assert codes("prm-message-channel") == list(CHANNELS)
    assert codes("prm-message-delivery-status") == list(DELIVERY_STATES)
    assert codes("prm-message-status-reason") == list(STATUS_REASONS)
    from mappings.document_reference import SOURCES
    from terminology.document_categories import PRM_CATEGORIES
    assert codes("prm-document-category") == list(PRM_CATEGORIES)
    assert codes("prm-document-source") == list(SOURCES)


def test_concept_maps_use_only_codes_of_their_systems() -> None:
    from terminology.code_systems import code_system
    for concept_map in catalog().of_type("ConceptMap"):
        for group in concept_map["group"]:
            source, target = code_system(group["source"]), code_system(group["target"])
            for element in group["element"]:
                if source is not None and source.complete:
                    assert source.find(element["code"]), (concept_map["id"], element["code"])
                for item in element.get("target", []):
                    if "code" in item and target is not None and target.complete:
                        assert target.find(item["code"]), (concept_map["id"], item["code"])
