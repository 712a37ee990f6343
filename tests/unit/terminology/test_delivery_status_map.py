"""The shipped delivery-status ConceptMap drives the Communication.status of each message."""

from __future__ import annotations

from fhir_server.messaging.records import FHIR_STATUS
from terminology.messaging import DELIVERY_STATES, DELIVERY_TO_EVENT_STATUS


def test_every_delivery_state_has_an_event_status() -> None:
    assert set(DELIVERY_TO_EVENT_STATUS) == set(DELIVERY_STATES)
    assert DELIVERY_TO_EVENT_STATUS["delivered"] == "completed"
    assert DELIVERY_TO_EVENT_STATUS["cancelled"] == "not-done"


def test_records_use_the_concept_map() -> None:
    assert FHIR_STATUS is DELIVERY_TO_EVENT_STATUS
