"""Property: whatever shape a CommunicationRequest's send order takes (template extensions,
variables, recipients, media, payloads), the server answers 201 or a 4xx OperationOutcome,
never a 500, and a refused request leaves no row behind."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from storage.messaging_tables import notification_requests
from terminology.messaging import (
    MESSAGE_CHANNEL,
    MESSAGE_TEMPLATE_EXTENSION,
    MESSAGE_VARIABLE_EXTENSION,
    V3_PARTICIPATION_MODE,
)
from tests.integration.messaging_helpers import FHIR_JSON

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_variable = st.builds(
    lambda name, value, broken: {"url": MESSAGE_VARIABLE_EXTENSION, "extension": (
        [{"url": "name", "valueString": name}] if broken else
        [{"url": "name", "valueString": name}, {"url": "value", "valueString": value}])},
    _text, _text, st.booleans())
_template = st.builds(lambda name: {"url": MESSAGE_TEMPLATE_EXTENSION, "valueString": name},
                      st.sampled_from(["", "unknown", "reminder", "a b", "{x}"]) | _text)
_medium = st.builds(lambda system, code: {"coding": [{"system": system, "code": code}]},
                    st.sampled_from([MESSAGE_CHANNEL, V3_PARTICIPATION_MODE, "urn:other"]),
                    st.sampled_from(["sms", "whatsapp", "email", "voice", "push", "PHONE",
                                     "EMAILWRIT", "fax", ""]))
_recipient = st.one_of(
    st.builds(lambda key: {"reference": f"Patient/{key}"},
              st.from_regex(r"[A-Za-z0-9\-.]{1,20}", fullmatch=True)),
    st.builds(lambda key: {"reference": f"#{key}"}, _text),
    st.builds(lambda variables: {"reference": "Practitioner/1", "extension": variables},
              st.lists(_variable, max_size=2)),
)


@st.composite
def _orders(draw: st.DrawFn) -> dict[str, Any]:
    order: dict[str, Any] = {
        "resourceType": "CommunicationRequest",
        "status": draw(st.sampled_from(["active", "draft", "on-hold", "revoked", "completed"])),
        "recipient": draw(st.lists(_recipient, max_size=4)),
    }
    if draw(st.booleans()):
        order["medium"] = draw(st.lists(_medium, min_size=1, max_size=2))
    extensions = draw(st.lists(st.one_of(_template, _variable), max_size=3))
    if extensions:
        order["extension"] = extensions
    if draw(st.booleans()):
        order["payload"] = [{"contentString": draw(_text)}]
    if draw(st.booleans()):
        order["occurrenceDateTime"] = draw(st.sampled_from(
            ["2026-01-01", "2026-13-01", "2030-01-01T10:00:00Z", "soon"]))
    if not order["recipient"]:
        del order["recipient"]
    return order


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(order=_orders())
def test_send_orders_answer_201_or_4xx_and_refusals_write_nothing(
        client: TestClient, engine: Engine, order: dict[str, Any]) -> None:
    with engine.connect() as connection:
        before = connection.execute(select(func.count()).select_from(
            notification_requests)).scalar_one()

    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON, json=order)

    with engine.connect() as connection:
        after = connection.execute(select(func.count()).select_from(
            notification_requests)).scalar_one()
    event(f"status {response.status_code}")
    assert response.status_code in (201, 400, 422), response.text
    if response.status_code == 201:
        assert after == before + 1
    else:
        assert after == before
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["diagnostics"]
