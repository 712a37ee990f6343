"""Messages really sent: the dispatcher with its Twilio channels (through the ``twilio``
library to a local HTTP server speaking Twilio's Messages API) and its SMTP channel (to a
local aiosmtpd server), on SQLite and PostgreSQL. Status callbacks come back signed; transient
errors are retried with backoff on a controlled clock; permanent ones fail at once; a
1000-recipient order goes out once per recipient."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from fhir_server.app import create_app
from fhir_server.settings import Settings
from storage.messaging_tables import message_deliveries
from tests.conftest import empty_tables
from tests.integration.messaging_helpers import (
    FHIR_JSON,
    Clock,
    create_patient,
    delivery_state,
    messages_of,
    post_order,
    request_status,
    run_dispatcher,
    send_order,
)
from tests.smtp_server import SmtpTestServer
from tests.twilio_server import TwilioServer

SENDER = "clinic@example.org"


@pytest.fixture
def client(settings: Settings, engine: Engine, twilio_server: TwilioServer,
           smtp_server: SmtpTestServer) -> Iterator[TestClient]:
    empty_tables(engine)
    settings.messaging_channels = "sms,whatsapp,email"
    settings.twilio_account_sid = twilio_server.account_sid
    settings.twilio_auth_token = twilio_server.auth_token
    settings.twilio_from_number = twilio_server.sms_from
    settings.twilio_whatsapp_from = twilio_server.whatsapp_from
    settings.twilio_api_base = twilio_server.url
    settings.smtp_url = smtp_server.url()
    settings.email_from = SENDER
    settings.messaging_retry_seconds = 30
    settings.messaging_max_attempts = 3
    with TestClient(create_app(settings, migrate=False)) as test_client:
        yield test_client


def _attempts(engine: Engine, communication_id: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(
            select(message_deliveries.c.attempts, message_deliveries.c.state)
            .where(message_deliveries.c.communication_id == communication_id)).one()


def test_sms_goes_out_through_twilio_and_its_callback_marks_it_delivered(
        client: TestClient, twilio_server: TwilioServer) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    request_id = post_order(client, send_order([patient], text="Your results are ready"))

    run_dispatcher(client, Clock())

    [sent] = twilio_server.messages
    assert (sent.to, sent.from_, sent.body) == ("+16175550100", twilio_server.sms_from,
                                                "Your results are ready")
    assert sent.status_callback is not None
    assert sent.status_callback.startswith("http://testserver/messaging/twilio/status?key=")
    [message] = messages_of(client, request_id)
    assert (message["status"], delivery_state(message)) == ("completed", "sent")
    assert {"system": "urn:prm:provider-message-id", "value": sent.sid} in message["identifier"]

    callback = twilio_server.post_status_callback(sent.sid, "delivered", client=client)

    assert callback.status_code == 204
    delivered = client.get(f"/fhir/Communication/{message['id']}").json()
    assert delivery_state(delivered) == "delivered" and "received" in delivered
    assert request_status(client, request_id) == "completed"


def test_whatsapp_uses_the_whatsapp_addresses(client: TestClient,
                                              twilio_server: TwilioServer) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    post_order(client, send_order([patient], channel="whatsapp", text="Hello"))

    run_dispatcher(client, Clock())

    [sent] = twilio_server.messages
    assert (sent.to, sent.from_) == ("whatsapp:+16175550100",
                                     f"whatsapp:{twilio_server.whatsapp_from}")


def test_email_goes_out_over_smtp_with_subject_and_message_id(
        client: TestClient, smtp_server: SmtpTestServer, engine: Engine) -> None:
    response = client.post("/messaging/templates", json={
        "name": "results_email", "channel": "email", "category": "alert",
        "subject": "Results for {patient_first_name}", "body": "Dear {patient_name}, hello."})
    assert response.status_code == 201, response.text
    patient = create_patient(client, given="Grace", family="Hopper", email="grace@example.org")
    request_id = post_order(client, send_order([patient], channel="email",
                                               template="results_email"))

    run_dispatcher(client, Clock())

    [received] = smtp_server.messages
    assert received.rcpt_tos == ["grace@example.org"]
    assert received.message["Subject"] == "Results for Grace"
    assert received.message["From"] == SENDER
    assert received.message.get_content().strip() == "Dear Grace Hopper, hello."
    [message] = messages_of(client, request_id)
    with engine.connect() as connection:
        key = connection.execute(select(message_deliveries.c.idempotency_key).where(
            message_deliveries.c.communication_id == message["id"])).scalar_one()
    assert key in received.message["Message-ID"]
    assert message["status"] == "completed"


def test_transient_errors_are_retried_with_backoff(client: TestClient, engine: Engine,
                                                   twilio_server: TwilioServer) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    request_id = post_order(client, send_order([patient]))
    twilio_server.fail_next(503, count=1)
    twilio_server.fail_next(429, code=20429, count=1)
    clock = Clock()

    run_dispatcher(client, clock)
    [message] = messages_of(client, request_id)
    assert message["status"] == "in-progress"
    assert tuple(_attempts(engine, message["id"])) == (1, "queued")

    clock.advance(seconds=29)
    run_dispatcher(client, clock)
    assert twilio_server.post_count == 1, "retried before its backoff"

    clock.advance(seconds=2)
    run_dispatcher(client, clock)
    assert tuple(_attempts(engine, message["id"])) == (2, "queued")

    clock.advance(seconds=61)
    run_dispatcher(client, clock)
    assert tuple(_attempts(engine, message["id"])) == (3, "sent")
    assert twilio_server.post_count == 3 and len(twilio_server.messages) == 1
    assert request_status(client, request_id) == "completed"


def test_retries_give_up_after_the_last_attempt(client: TestClient, engine: Engine,
                                                twilio_server: TwilioServer) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    request_id = post_order(client, send_order([patient]))
    twilio_server.fail_next(503, count=10)
    clock = Clock()

    for _ in range(4):
        run_dispatcher(client, clock)
        clock.advance(hours=1)

    [message] = messages_of(client, request_id)
    assert twilio_server.post_count == 3
    assert message["status"] == "not-done"
    assert "gave up after 3 attempts" in message["statusReason"]["text"]
    assert request_status(client, request_id) == "completed"


def test_permanent_error_fails_at_once_naming_the_code(client: TestClient,
                                                       twilio_server: TwilioServer) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    request_id = post_order(client, send_order([patient]))
    twilio_server.fail_next(400, code=21211, message="The 'To' number is not valid")

    run_dispatcher(client, Clock())

    [message] = messages_of(client, request_id)
    assert twilio_server.post_count == 1
    assert message["status"] == "not-done"
    assert message["statusReason"]["coding"][0]["code"] == "failed"
    assert "21211" in message["statusReason"]["text"]


def test_smtp_temporary_refusal_is_retried(client: TestClient, engine: Engine,
                                           smtp_server: SmtpTestServer) -> None:
    patient = create_patient(client, given="Grace", family="Hopper", email="grace@example.org")
    post_order(client, send_order([patient], channel="email", text="Hello"))
    smtp_server.fail_next("451 4.3.0 Try again later")
    clock = Clock()

    run_dispatcher(client, clock)
    assert smtp_server.messages == []
    clock.advance(seconds=31)
    run_dispatcher(client, clock)

    assert len(smtp_server.messages) == 1


def test_thousand_recipients_each_get_one_message(client: TestClient,
                                                  twilio_server: TwilioServer) -> None:
    people = [{"resourceType": "RelatedPerson", "id": f"r{index}",
               "patient": {"reference": "Patient/unknown"},
               "telecom": [{"system": "phone", "value": f"+1617555{index:04d}"}]}
              for index in range(1000)]
    order = send_order([{"reference": f"#r{index}"} for index in range(1000)])
    order["contained"] = people
    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON, json=order)
    assert response.status_code == 201, response.text

    report = run_dispatcher(client, Clock())

    assert (report.queued, report.states) == (1000, {"sent": 1000})
    assert sorted(message.to for message in twilio_server.messages) == sorted(
        f"+1617555{index:04d}" for index in range(1000))
    assert request_status(client, response.json()["id"]) == "completed"


def test_email_interrupted_mid_send_is_not_sent_again(client: TestClient, engine: Engine,
                                                      smtp_server: SmtpTestServer) -> None:
    patient = create_patient(client, given="Grace", family="Hopper", email="grace@example.org")
    request_id = post_order(client, send_order([patient], channel="email", text="Hello"))
    clock = Clock()
    dispatcher = client.app.state.services.dispatcher  # type: ignore[attr-defined]
    dispatcher.clock = clock
    assert client.portal is not None
    # a worker fans out and claims the message, then dies before anything is recorded
    client.portal.call(dispatcher._fan_out.fan_out,
                       client.portal.call(dispatcher._fan_out.due, clock())[0], clock())
    client.portal.call(dispatcher._deliverer._claim, clock())

    clock.advance(seconds=121)  # its lease (FHIR_MESSAGING_LEASE_SECONDS) runs out
    run_dispatcher(client, clock)

    assert smtp_server.messages == []
    [message] = messages_of(client, request_id)
    assert message["status"] == "not-done"
    assert message["statusReason"]["coding"][0]["code"] == "unknown-outcome"
