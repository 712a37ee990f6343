"""The channel senders on the wire, with no database: Twilio SMS and WhatsApp through the real
``twilio`` library to a local server speaking its Messages API, email through ``smtplib`` to
a local ``aiosmtpd``, the outbox, and the registry that picks them from the settings."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from fhir_server.messaging.channels.base import (
    CannotReconcile,
    OutgoingMessage,
    PermanentSendError,
    SendReceipt,
    TransientSendError,
)
from fhir_server.messaging.channels.outbox_channel import OutboxChannel
from fhir_server.messaging.channels.registry import ChannelConfigError, channels_from_settings
from fhir_server.messaging.channels.smtp_channel import SmtpChannel, parse_smtp_url
from fhir_server.messaging.channels.twilio_channel import TwilioChannel
from fhir_server.settings import Settings
from tests.smtp_server import PASSWORD, SmtpTestServer
from tests.twilio_server import TwilioServer

CALLBACK = "https://fhir.example.org/messaging/twilio/status?key=k1"
SENDER = "Clinic <noreply@clinic.example.org>"
MESSAGING_VARIABLES = ("FHIR_MESSAGING_CHANNELS", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
                       "TWILIO_FROM_NUMBER", "TWILIO_WHATSAPP_FROM", "FHIR_TWILIO_API_BASE",
                       "FHIR_SMTP_URL", "FHIR_EMAIL_FROM")


def _message(channel: str = "sms", address: str = "+16175550100", *, body: str = "Hello",
             key: str = "k1", subject: str | None = None,
             callback: str | None = CALLBACK) -> OutgoingMessage:
    return OutgoingMessage(channel=channel, address=address, body=body, subject=subject,
                           idempotency_key=key, status_callback=callback)


def _twilio(server: TwilioServer, name: str = "sms") -> TwilioChannel:
    sender = server.sms_from if name == "sms" else server.whatsapp_from
    return TwilioChannel(name, account_sid=server.account_sid, auth_token=server.auth_token,
                         sender=sender, api_base=server.url)


def _smtp(server: SmtpTestServer, **url: bool) -> SmtpChannel:
    return SmtpChannel(parse_smtp_url(server.url(**url)), sender=SENDER)


def _settings(monkeypatch: pytest.MonkeyPatch, **environment: str) -> Settings:
    """Settings read from exactly this messaging environment."""
    for variable in MESSAGING_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    return Settings()


# Twilio

def test_sms_posts_to_from_body_and_status_callback(twilio_server: TwilioServer) -> None:
    receipt = _twilio(twilio_server).send(_message(body="Your results are ready"))

    [received] = twilio_server.messages
    assert receipt == SendReceipt(received.sid, "sent")
    assert received.sid.startswith("SM") and len(received.sid) == 34
    assert (received.to, received.from_, received.body) == (
        "+16175550100", twilio_server.sms_from, "Your results are ready")
    assert received.form["StatusCallback"] == CALLBACK


def test_whatsapp_prefixes_both_numbers(twilio_server: TwilioServer) -> None:
    _twilio(twilio_server, "whatsapp").send(_message("whatsapp", callback=None))

    [received] = twilio_server.messages
    assert received.to == "whatsapp:+16175550100"
    assert received.from_ == f"whatsapp:{twilio_server.whatsapp_from}"
    assert "StatusCallback" not in received.form


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limit_and_server_error_are_transient(twilio_server: TwilioServer,
                                                   status: int) -> None:
    twilio_server.fail_next(status, code=20429 if status == 429 else None)

    with pytest.raises(TransientSendError, match=f"Twilio {status}"):
        _twilio(twilio_server).send(_message())
    assert twilio_server.messages == []


def test_invalid_number_is_permanent_with_its_code(twilio_server: TwilioServer) -> None:
    twilio_server.fail_next(400, code=21211, message="Invalid 'To' Phone Number")

    with pytest.raises(PermanentSendError, match="21211"):
        _twilio(twilio_server).send(_message())


def test_malformed_number_is_refused_by_the_server_as_twilio_does(
        twilio_server: TwilioServer) -> None:
    with pytest.raises(PermanentSendError, match="Twilio 400 error 21211"):
        _twilio(twilio_server).send(_message(address="12345"))


def test_wrong_token_is_permanent(twilio_server: TwilioServer) -> None:
    channel = TwilioChannel("sms", account_sid=twilio_server.account_sid,
                            auth_token="wrong", sender=twilio_server.sms_from,
                            api_base=twilio_server.url)

    with pytest.raises(PermanentSendError, match="Twilio 401 error 20003"):
        channel.send(_message())


def test_unreachable_twilio_is_transient(twilio_server: TwilioServer) -> None:
    channel = TwilioChannel("sms", account_sid=twilio_server.account_sid,
                            auth_token=twilio_server.auth_token, sender=twilio_server.sms_from,
                            api_base="http://127.0.0.1:9")

    with pytest.raises(TransientSendError, match="unreachable"):
        channel.send(_message())


def test_find_sent_returns_the_message_sent(twilio_server: TwilioServer) -> None:
    channel = _twilio(twilio_server)
    since = datetime.now(UTC) - timedelta(seconds=5)
    channel.send(_message(body="Other text", key="k0"))
    receipt = channel.send(_message(body="Reminder"))

    assert channel.find_sent(_message(body="Reminder"), since) == receipt


def test_find_sent_returns_none_for_a_message_never_sent(twilio_server: TwilioServer) -> None:
    channel = _twilio(twilio_server)
    channel.send(_message(body="Reminder"))

    since = datetime.now(UTC) - timedelta(seconds=5)
    assert channel.find_sent(_message(body="Never sent"), since) is None
    assert channel.find_sent(_message(address="+16175550199", body="Reminder"), since) is None


def test_find_sent_ignores_messages_before_since(twilio_server: TwilioServer) -> None:
    channel = _twilio(twilio_server)
    channel.send(_message(body="Reminder"))

    assert channel.find_sent(_message(body="Reminder"),
                             datetime.now(UTC) + timedelta(minutes=1)) is None


def test_find_sent_reads_past_the_first_page(twilio_server: TwilioServer) -> None:
    channel = _twilio(twilio_server, "whatsapp")
    since = datetime.now(UTC) - timedelta(seconds=5)
    first = channel.send(_message("whatsapp", body="First"))
    for number in range(60):
        channel.send(_message("whatsapp", body=f"Later {number}"))

    assert channel.find_sent(_message("whatsapp", body="First"), since) == first


def test_on_receive_runs_before_the_answer(twilio_server: TwilioServer) -> None:
    seen: list[int] = []
    twilio_server.on_receive = lambda message: seen.append(len(twilio_server.messages))

    _twilio(twilio_server).send(_message())

    assert seen == [1]


def test_status_callback_and_inbound_are_signed_as_twilio_signs(
        twilio_server: TwilioServer) -> None:
    posted: list[tuple[str, dict[str, str], str]] = []

    async def capture(request: Request) -> Response:
        form = {name: values[-1] for name, values in parse_qs((await request.body()).decode(),
                                                              keep_blank_values=True).items()}
        posted.append((str(request.url), form, request.headers["X-Twilio-Signature"]))
        return Response(status_code=204)

    receiver = TestClient(Starlette(routes=[Route("/hook", capture, methods=["POST"])]))
    receipt = _twilio(twilio_server).send(_message(callback="http://testserver/hook?key=k1"))
    assert receipt.provider_message_id is not None

    twilio_server.post_status_callback(receipt.provider_message_id, "undelivered",
                                       error_code="30003", client=receiver)
    twilio_server.post_inbound("http://testserver/hook", from_="+16175550100", body="STOP",
                               client=receiver)

    validator = RequestValidator(twilio_server.auth_token)
    (status_url, status, first), (inbound_url, inbound, second) = posted
    assert validator.validate(status_url, status, first)
    assert validator.validate(inbound_url, inbound, second)
    assert (status["MessageSid"], status["MessageStatus"], status["ErrorCode"]) == (
        receipt.provider_message_id, "undelivered", "30003")
    assert (inbound["From"], inbound["Body"]) == ("+16175550100", "STOP")
    assert twilio_server.message(receipt.provider_message_id).status == "undelivered"


# SMTP

def test_email_over_plain_smtp_as_sent(smtp_server: SmtpTestServer) -> None:
    receipt = _smtp(smtp_server).send(_message("email", "ada@example.org", key="msg-42",
                                               subject="Résultats", body="Prêts. ✓"))

    [received] = smtp_server.messages
    assert (received.mail_from, received.rcpt_tos) == ("noreply@clinic.example.org",
                                                      ["ada@example.org"])
    email = received.message
    assert email["Message-ID"] == "<msg-42@clinic.example.org>"
    assert receipt == SendReceipt("<msg-42@clinic.example.org>", "sent")
    assert (email["Subject"], email["To"], email["From"]) == ("Résultats", "ada@example.org",
                                                              SENDER)
    assert email.get_content_type() == "text/plain"
    assert email.get_content().strip() == "Prêts. ✓"


def test_email_over_starttls_with_login(smtp_tls_server: SmtpTestServer) -> None:
    _smtp(smtp_tls_server).send(_message("email", "ada@example.org", subject="Hi"))

    [received] = smtp_tls_server.messages
    assert received.message["Subject"] == "Hi"


def test_email_over_implicit_tls(smtps_server: SmtpTestServer) -> None:
    _smtp(smtps_server).send(_message("email", "ada@example.org"))

    assert len(smtps_server.messages) == 1


def test_wrong_password_is_permanent(smtp_tls_server: SmtpTestServer) -> None:
    url = smtp_tls_server.url().replace(quote(PASSWORD, safe=""), "another")

    with pytest.raises(PermanentSendError, match="SMTP 535"):
        SmtpChannel(parse_smtp_url(url), sender=SENDER).send(
            _message("email", "ada@example.org"))


def test_untrusted_certificate_is_permanent(smtp_tls_server: SmtpTestServer) -> None:
    url = smtp_tls_server.url().split("&cafile=")[0]

    with pytest.raises(PermanentSendError, match="certificate"):
        SmtpChannel(parse_smtp_url(url), sender=SENDER).send(
            _message("email", "ada@example.org"))


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_451_is_transient(smtp_server: SmtpTestServer, stage: str) -> None:
    smtp_server.fail_next("451 4.3.0 Try again later", stage=stage)

    with pytest.raises(TransientSendError, match="SMTP 451"):
        _smtp(smtp_server).send(_message("email", "ada@example.org"))
    assert smtp_server.messages == []


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_550_is_permanent(smtp_server: SmtpTestServer, stage: str) -> None:
    smtp_server.fail_next("550 5.1.1 No such user", stage=stage)

    with pytest.raises(PermanentSendError, match="SMTP 550: 5.1.1 No such user"):
        _smtp(smtp_server).send(_message("email", "ada@example.org"))


def test_refused_connection_is_transient() -> None:
    channel = SmtpChannel(parse_smtp_url("smtp://127.0.0.1:9?timeout=2"), sender=SENDER)

    with pytest.raises(TransientSendError, match="unreachable"):
        channel.send(_message("email", "ada@example.org"))


def test_smtp_cannot_reconcile(smtp_server: SmtpTestServer) -> None:
    with pytest.raises(CannotReconcile):
        _smtp(smtp_server).find_sent(_message("email", "ada@example.org"), datetime.now(UTC))


def test_both_channels_send_concurrently_from_a_thread_pool(
        twilio_server: TwilioServer, smtp_server: SmtpTestServer) -> None:
    twilio, smtp = _twilio(twilio_server), _smtp(smtp_server)
    with ThreadPoolExecutor(8) as pool:
        sids = list(pool.map(lambda n: twilio.send(_message(body=f"text {n}")), range(40)))
        list(pool.map(lambda n: smtp.send(_message("email", f"p{n}@example.org", key=f"k{n}")),
                      range(40)))

    assert len({receipt.provider_message_id for receipt in sids}) == 40
    assert sorted(item.body for item in twilio_server.messages) == sorted(
        f"text {n}" for n in range(40))
    assert len({item.message["Message-ID"] for item in smtp_server.messages}) == 40


# Outbox and registry

def test_outbox_records_without_the_body(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "fhir_server.messaging")

    receipt = OutboxChannel("sms").send(_message(body="secret text"))

    assert receipt == SendReceipt(None, "sent")
    assert "k1" in caplog.text and "+1617*****00" in caplog.text
    assert "secret text" not in caplog.text and "+16175550100" not in caplog.text
    assert OutboxChannel("sms").find_sent(_message(), datetime.now(UTC)) is None


def test_registry_defaults_every_channel_to_the_outbox(monkeypatch: pytest.MonkeyPatch) -> None:
    channels = channels_from_settings(_settings(monkeypatch))

    assert sorted(channels) == ["email", "push", "sms", "voice", "whatsapp"]
    assert all(isinstance(channel, OutboxChannel) for channel in channels.values())


def test_registry_builds_listed_channels(twilio_server: TwilioServer,
                                         smtp_server: SmtpTestServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, **twilio_server.environment(), FHIR_SMTP_URL=smtp_server.url(),
                         FHIR_EMAIL_FROM=SENDER, FHIR_MESSAGING_CHANNELS="sms, Email")

    channels = channels_from_settings(settings)

    assert isinstance(channels["sms"], TwilioChannel)
    assert isinstance(channels["email"], SmtpChannel)
    assert isinstance(channels["whatsapp"], OutboxChannel)
    channels["sms"].send(_message())
    assert len(twilio_server.messages) == 1


@pytest.mark.parametrize(("listed", "missing"), [
    ("sms", "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER"),
    ("whatsapp", "TWILIO_WHATSAPP_FROM"),
    ("email", "FHIR_SMTP_URL, FHIR_EMAIL_FROM"),
])
def test_registry_names_missing_variables(listed: str, missing: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"FHIR_MESSAGING_CHANNELS": listed}
    if listed == "whatsapp":
        values |= {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}

    with pytest.raises(ChannelConfigError, match=f"needs {missing} "):
        channels_from_settings(_settings(monkeypatch, **values))


@pytest.mark.parametrize("listed", ["voice", "push", "sms,fax"])
def test_registry_refuses_channels_it_cannot_send(listed: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, FHIR_MESSAGING_CHANNELS=listed)

    with pytest.raises(ChannelConfigError, match="voice|push|fax"):
        channels_from_settings(settings)
