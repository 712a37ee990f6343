"""Reading a send order from a CommunicationRequest and planning one message per recipient
(pure): template variables by precedence, addresses per channel, and the reasons a recipient
cannot be messaged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_server.messaging.addresses import InvalidAddress, address_for, person_variables
from fhir_server.messaging.message_plan import PlanError, TemplateText, plan_messages
from fhir_server.messaging.records import new_communication, with_state
from fhir_server.messaging.send_order import OrderError, send_order
from fhir_server.messaging.templates import render_text
from terminology.messaging import (
    MESSAGE_CHANNEL,
    MESSAGE_TEMPLATE_EXTENSION,
    MESSAGE_VARIABLE_EXTENSION,
)


def _variable(name: str, value: str) -> dict[str, Any]:
    return {"url": MESSAGE_VARIABLE_EXTENSION, "extension": [
        {"url": "name", "valueString": name}, {"url": "value", "valueString": value}]}


def _request(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "CommunicationRequest", "id": "r1", "status": "active",
            "medium": [{"coding": [{"system": MESSAGE_CHANNEL, "code": "sms"}]}],
            "recipient": [{"reference": "Patient/p1"}], **extra}


ADA = {"resourceType": "Patient", "id": "p1", "name": [{"given": ["Ada"], "family": "Lovelace"}],
       "telecom": [{"system": "phone", "value": "(617) 555-0100", "use": "home"},
                   {"system": "phone", "value": "+1 617 555 0101", "use": "mobile"},
                   {"system": "email", "value": "ada@example.org"}]}
TEMPLATE = TemplateText("reminder", "sms", None, "Hi {patient_first_name}, {day} at {time}")


def test_literal_payload_is_read() -> None:
    order = send_order(_request(payload=[{"contentString": "Hello"}]))
    assert (order.channel, order.literal_text, order.template_name) == ("sms", "Hello", None)


def test_template_and_payload_together_are_refused() -> None:
    with pytest.raises(OrderError, match="either"):
        send_order(_request(payload=[{"contentString": "Hello"}], extension=[
            {"url": MESSAGE_TEMPLATE_EXTENSION, "valueString": "reminder"}]))


def test_variable_without_value_is_refused() -> None:
    broken = {"url": MESSAGE_VARIABLE_EXTENSION,
              "extension": [{"url": "name", "valueString": "day"}]}
    with pytest.raises(OrderError, match="name and value"):
        send_order(_request(extension=[broken]))


def test_recipient_variables_win_over_global_ones() -> None:
    order = send_order(_request(
        extension=[{"url": MESSAGE_TEMPLATE_EXTENSION, "valueString": "reminder"},
                   _variable("day", "Monday"), _variable("time", "09:00")],
        recipient=[{"reference": "Patient/p1", "extension": [_variable("time", "11:30")]}]))
    [message] = plan_messages(order, template=TEMPLATE, people={0: ADA}, opted_out=set(),
                              region="US", render=render_text)
    assert message.body == "Hi Ada, Monday at 11:30"
    assert message.address == "+16175550101"


def test_mobile_phone_is_preferred_for_sms_and_email_for_email() -> None:
    assert address_for("sms", ADA, region="US") == "+16175550101"
    assert address_for("email", ADA, region="US") == "ada@example.org"
    assert address_for("push", ADA, region="US") == "Patient/p1"


def test_unparseable_phone_is_invalid_for_sms() -> None:
    with pytest.raises(InvalidAddress, match="'12'"):
        address_for("sms", {"telecom": [{"system": "phone", "value": "12"}]}, region="US")


def test_old_contact_points_are_skipped() -> None:
    person = {"telecom": [{"system": "email", "value": "old@example.org", "use": "old"}]}
    assert address_for("email", person, region="US") is None


def test_missing_variables_and_opt_out_are_reasons() -> None:
    order = send_order(_request(
        extension=[{"url": MESSAGE_TEMPLATE_EXTENSION, "valueString": "reminder"}],
        recipient=[{"reference": "Patient/p1"}, {"reference": "Patient/p2"}]))
    other = {**ADA, "id": "p2"}
    plan = plan_messages(order, template=TEMPLATE, people={0: ADA, 1: other},
                         opted_out={("p2", "sms")}, region="US", render=render_text)
    assert [message.reason for message in plan] == ["missing-variables", "unsubscribed"]
    assert "day, time" in str(plan[0].detail)


def test_template_for_another_channel_is_a_plan_error() -> None:
    order = send_order(_request(extension=[
        {"url": MESSAGE_TEMPLATE_EXTENSION, "valueString": "reminder"}]))
    with pytest.raises(PlanError, match="email"):
        plan_messages(order, template=TemplateText("reminder", "email", "s", "b"), people={},
                      opted_out=set(), region="US", render=render_text)


def test_person_variables_prefer_the_usual_name() -> None:
    person = {"name": [{"use": "official", "given": ["Augusta", "Ada"], "family": "King"},
                       {"use": "usual", "given": ["Ada"], "family": "Lovelace"}]}
    assert person_variables(person) == {"patient_name": "Ada Lovelace",
                                        "patient_first_name": "Ada",
                                        "patient_last_name": "Lovelace"}


def test_communication_goes_through_the_delivery_states() -> None:
    order = send_order(_request(payload=[{"contentString": "Hello"}]))
    [message] = plan_messages(order, template=None, people={0: ADA}, opted_out=set(),
                              region="US", render=render_text)
    queued = new_communication(_request(), message, key="k1", template_name=None)
    assert queued["status"] == "preparation"
    sent = with_state(queued, "sent", at=datetime(2026, 1, 1, tzinfo=UTC), provider_id="SM1")
    assert (sent["status"], sent["sent"]) == ("completed", "2026-01-01T00:00:00.000Z")
    assert {"system": "urn:prm:provider-message-id", "value": "SM1"} in sent["identifier"]
    failed = with_state(sent, "undelivered", detail="provider error 30003")
    assert failed["status"] == "not-done"
    assert failed["statusReason"]["coding"][0]["code"] == "undelivered"


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda children: st.lists(children, max_size=3)
                     | st.dictionaries(st.sampled_from(["url", "valueString", "extension",
                                                        "reference", "contentString", "id"]),
                                       children, max_size=3), max_leaves=12)


@given(extension=_json, recipient=_json, payload=_json, contained=_json)
def test_any_request_shape_reads_or_raises_order_error(extension: Any, recipient: Any,
                                                       payload: Any, contained: Any) -> None:
    resource = _request(extension=extension, recipient=recipient, payload=payload,
                        contained=contained)
    try:
        order = send_order(resource)
    except OrderError as exc:
        assert str(exc).startswith("CommunicationRequest")
    else:
        assert all(recipient.index == index for index, recipient in enumerate(order.recipients))
