"""The shipped messaging ConceptMaps: every PRM channel and priority maps both ways, and a
request row the PRM wrote with only its own priority reads back with the mapped FHIR one."""

from __future__ import annotations

from datetime import UTC, datetime

from mappings.communication import COMMUNICATION_REQUEST
from terminology.messaging import (
    CHANNEL_TO_V3,
    CHANNELS,
    FHIR_TO_PRM_PRIORITY,
    PRM_TO_FHIR_PRIORITY,
    V3_TO_CHANNEL,
    channel_medium,
    channel_of,
)


def test_every_channel_has_a_participation_mode_and_reads_back() -> None:
    assert set(CHANNEL_TO_V3) == set(CHANNELS)
    for channel in CHANNELS:
        assert channel_of([channel_medium(channel)]) == channel


def test_a_v3_code_alone_maps_to_a_channel() -> None:
    medium = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
                          "code": "EMAILWRIT"}]}
    assert channel_of([medium]) == "email"
    assert set(V3_TO_CHANNEL.values()) <= set(CHANNELS)


def test_priorities_map_both_ways() -> None:
    assert set(FHIR_TO_PRM_PRIORITY) == {"routine", "urgent", "asap", "stat"}
    assert set(PRM_TO_FHIR_PRIORITY) == {"low", "normal", "high", "urgent"}
    for prm in ("normal", "high", "urgent"):
        assert FHIR_TO_PRM_PRIORITY[PRM_TO_FHIR_PRIORITY[prm]] == prm


def test_prm_priority_alone_reads_as_the_mapped_fhir_priority() -> None:
    rows = COMMUNICATION_REQUEST.to_rows(
        {"resourceType": "CommunicationRequest", "status": "active"}, resource_id="r1",
        version_id=1, last_updated=datetime(2026, 1, 1, tzinfo=UTC), facts=None)
    assert rows.main["prm_priority"] is None
    assert "priority" not in COMMUNICATION_REQUEST.to_resource(rows)
    rows.main["prm_priority"] = "high"  # as the PRM writes it
    assert COMMUNICATION_REQUEST.to_resource(rows)["priority"] == "urgent"
