"""Twilio's calls back to the server, signed as Twilio signs them (``X-Twilio-Signature``
computed by the twilio library's RequestValidator with the auth token): delivery status moves a
Communication on, only forward; an inbound STOP opts the sender out of that channel, START
opts back in; a bad or missing signature is 403."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from fhir_server.app import create_app
from fhir_server.settings import Settings
from storage.messaging_tables import message_deliveries
from tests.conftest import empty_tables
from tests.integration.messaging_helpers import (
    Clock,
    create_patient,
    delivery_state,
    messages_of,
    post_order,
    run_dispatcher,
    send_order,
)

TOKEN = "test-auth-token-0123456789"
ROOT = "http://testserver"


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    empty_tables(engine)
    settings.twilio_auth_token = TOKEN
    with TestClient(create_app(settings, migrate=False)) as test_client:
        yield test_client


def _post_signed(client: TestClient, path: str, form: dict[str, str], *,
                 token: str = TOKEN) -> int:
    signature = RequestValidator(token).compute_signature(f"{ROOT}{path}", form)
    response = client.post(path, content=urlencode(form), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
    return response.status_code


def _sent_message(client: TestClient, engine: Engine, phone: str = "+16175550100",
                  channel: str = "sms") -> tuple[str, str, str]:
    """(patient id, Communication id, idempotency key) of one message sent to the outbox."""
    patient = create_patient(client, given="Ada", family="Lovelace", phone=phone)
    request_id = post_order(client, send_order([patient], channel=channel))
    run_dispatcher(client, Clock())
    [message] = messages_of(client, request_id)
    with engine.connect() as connection:
        key = connection.execute(select(message_deliveries.c.idempotency_key).where(
            message_deliveries.c.communication_id == message["id"])).scalar_one()
    return patient, message["id"], key


def _status(client: TestClient, key: str, status: str, **extra: str) -> int:
    return _post_signed(client, f"/messaging/twilio/status?key={key}",
                        {"MessageSid": "SM" + "a" * 32, "MessageStatus": status,
                         "AccountSid": "AC" + "b" * 32, **extra})


def test_delivered_callback_completes_the_message(client: TestClient, engine: Engine) -> None:
    _, communication_id, key = _sent_message(client, engine)

    assert _status(client, key, "delivered") == 204

    message = client.get(f"/fhir/Communication/{communication_id}").json()
    assert message["status"] == "completed"
    assert delivery_state(message) == "delivered"
    assert "received" in message
    assert {"system": "urn:prm:provider-message-id", "value": "SM" + "a" * 32} in (
        message["identifier"])


def test_late_sent_callback_does_not_undo_delivered(client: TestClient, engine: Engine) -> None:
    _, communication_id, key = _sent_message(client, engine)
    _status(client, key, "delivered")
    versions_before = client.get(f"/fhir/Communication/{communication_id}").json()["meta"]

    assert _status(client, key, "sent") == 204

    message = client.get(f"/fhir/Communication/{communication_id}").json()
    assert delivery_state(message) == "delivered"
    assert message["meta"]["versionId"] == versions_before["versionId"]


def test_undelivered_callback_makes_the_message_not_done(client: TestClient,
                                                        engine: Engine) -> None:
    _, communication_id, key = _sent_message(client, engine)

    assert _status(client, key, "undelivered", ErrorCode="30003") == 204

    message = client.get(f"/fhir/Communication/{communication_id}").json()
    assert message["status"] == "not-done"
    assert message["statusReason"]["coding"][0]["code"] == "undelivered"
    assert "30003" in message["statusReason"]["text"]
    stats = client.get("/fhir/Communication/$stats").json()["parameter"]
    counts = {item["name"]: item.get("valueInteger") for item in stats if "part" not in item}
    assert (counts["sent"], counts["delivered"], counts["failed"]) == (1, 0, 1)


def test_bad_signature_is_403(client: TestClient, engine: Engine) -> None:
    _, communication_id, key = _sent_message(client, engine)
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    signature = RequestValidator("another-token").compute_signature(
        f"{ROOT}/messaging/twilio/status?key={key}", form)

    response = client.post(f"/messaging/twilio/status?key={key}", content=urlencode(form),
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "X-Twilio-Signature": signature})

    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"
    message = client.get(f"/fhir/Communication/{communication_id}").json()
    assert delivery_state(message) == "sent"


def test_missing_signature_is_403(client: TestClient) -> None:
    response = client.post("/messaging/twilio/inbound", content="From=%2B16175550100&Body=STOP",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 403


def test_inbound_stop_opts_out_of_sms_only(client: TestClient, engine: Engine) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    assert _post_signed(client, "/messaging/twilio/inbound",
                        {"From": "+16175550100", "To": "+15005550006", "Body": " stop "}) == 200

    sms = post_order(client, send_order([patient], channel="sms"))
    whatsapp = post_order(client, send_order([patient], channel="whatsapp"))
    run_dispatcher(client, Clock())

    [refused] = messages_of(client, sms)
    assert refused["status"] == "not-done"
    assert refused["statusReason"]["coding"][0]["code"] == "unsubscribed"
    assert delivery_state(refused) == "unsubscribed"
    assert [message["status"] for message in messages_of(client, whatsapp)] == ["completed"]


def test_inbound_start_opts_back_in(client: TestClient) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    for body in ("STOP", "START"):
        assert _post_signed(client, "/messaging/twilio/inbound",
                            {"From": "whatsapp:+16175550100", "Body": body}) == 200

    request_id = post_order(client, send_order([patient], channel="whatsapp"))
    run_dispatcher(client, Clock())

    assert [message["status"] for message in messages_of(client, request_id)] == ["completed"]


def test_callbacks_are_refused_without_an_auth_token(settings: Settings,
                                                     engine: Engine) -> None:
    empty_tables(engine)
    with TestClient(create_app(settings, migrate=False)) as unconfigured:
        response = unconfigured.post("/messaging/twilio/status?key=x", content="MessageSid=SM1",
                                     headers={"Content-Type":
                                              "application/x-www-form-urlencoded"})
    assert response.status_code == 403
    assert "TWILIO_AUTH_TOKEN" in response.json()["issue"][0]["diagnostics"]
