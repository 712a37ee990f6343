"""Which sender serves each channel: those listed in ``FHIR_MESSAGING_CHANNELS`` send for real
(sms and whatsapp through Twilio, email over SMTP), the others record to the outbox. voice and
push have no real sender. A listed channel whose settings are missing stops the server at
start, naming the variables to set, rather than failing every message later."""

from __future__ import annotations

from fhir_server.messaging.channels.base import Channel
from fhir_server.messaging.channels.outbox_channel import OutboxChannel
from fhir_server.messaging.channels.smtp_channel import SmtpChannel, parse_smtp_url
from fhir_server.messaging.channels.twilio_channel import TwilioChannel
from fhir_server.settings import Settings
from terminology.messaging import CHANNELS

REAL_SENDERS = ("sms", "whatsapp", "email")


class ChannelConfigError(ValueError):
    """``FHIR_MESSAGING_CHANNELS`` asks for something the settings cannot provide."""


def channels_from_settings(settings: Settings) -> dict[str, Channel]:
    """A sender for each of the five channels."""
    listed = settings.sending_channels
    unknown = sorted(listed - set(CHANNELS))
    if unknown:
        raise ChannelConfigError(f"FHIR_MESSAGING_CHANNELS: unknown channel(s) "
                                 f"{', '.join(unknown)} (known: {', '.join(CHANNELS)})")
    unsendable = sorted(listed - set(REAL_SENDERS))
    if unsendable:
        raise ChannelConfigError(f"FHIR_MESSAGING_CHANNELS: {', '.join(unsendable)} cannot "
                                 f"send for real (only {', '.join(REAL_SENDERS)}); "
                                 "leave them out to record them in the outbox")
    channels: dict[str, Channel] = {name: OutboxChannel(name) for name in CHANNELS}
    if "sms" in listed:
        channels["sms"] = _twilio(settings, "sms", settings.twilio_from_number,
                                  "TWILIO_FROM_NUMBER")
    if "whatsapp" in listed:
        channels["whatsapp"] = _twilio(settings, "whatsapp", settings.twilio_whatsapp_from,
                                       "TWILIO_WHATSAPP_FROM")
    if "email" in listed:
        channels["email"] = _smtp(settings)
    return channels


def _twilio(settings: Settings, name: str, sender: str | None,
            sender_variable: str) -> TwilioChannel:
    _require(name, {"TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
                    "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
                    sender_variable: sender})
    assert settings.twilio_account_sid and settings.twilio_auth_token and sender
    return TwilioChannel(name, account_sid=settings.twilio_account_sid,
                         auth_token=settings.twilio_auth_token, sender=sender,
                         api_base=settings.twilio_api_base)


def _smtp(settings: Settings) -> SmtpChannel:
    _require("email", {"FHIR_SMTP_URL": settings.smtp_url,
                       "FHIR_EMAIL_FROM": settings.email_from})
    assert settings.smtp_url and settings.email_from
    try:
        return SmtpChannel(parse_smtp_url(settings.smtp_url), sender=settings.email_from)
    except (ValueError, OSError) as exc:  # a bad URL or sender, an unreadable cafile
        raise ChannelConfigError(f"email channel: {exc}") from exc


def _require(channel: str, values: dict[str, str | None]) -> None:
    missing = [variable for variable, value in values.items() if not value]
    if missing:
        raise ChannelConfigError(f"FHIR_MESSAGING_CHANNELS lists {channel}, which needs "
                                 f"{', '.join(missing)} (unset)")
