"""Where a message to a person goes on a channel, from their telecom (pure), and what a
template may say about them (``{patient_name}``, ...).

SMS, WhatsApp and voice take a phone (``sms`` contact points first, then mobile phones, then
other phones, each by rank), in E.164; email takes an email contact point. Push has no address:
the app is told by the person's id. Old contact points and ended periods are skipped."""

from __future__ import annotations

from typing import Any

from mappings.contact_points import ContactPointError, check_email, phone_to_e164
from mappings.search_rows import listed

PHONE_CHANNELS = ("sms", "whatsapp", "voice")


class InvalidAddress(ValueError):
    """The person's contact point for this channel cannot be used for it."""


def address_for(channel: str, person: dict[str, Any], *, region: str) -> str | None:
    """The address of ``person`` (a Patient or a contained RelatedPerson, Practitioner, ...)
    on ``channel``; None when they have none; InvalidAddress when theirs is unusable."""
    if channel == "push":
        kind, key = person.get("resourceType"), person.get("id")
        return f"{kind}/{key}" if kind and key else None
    telecoms = [point for point in listed(person.get("telecom"))
                if isinstance(point, dict) and isinstance(point.get("value"), str)
                and point.get("use") != "old" and not (point.get("period") or {}).get("end")]
    if channel == "email":
        emails = _ranked([point for point in telecoms if point.get("system") == "email"])
        if not emails:
            return None
        try:
            return check_email(emails[0]["value"].strip())
        except ContactPointError as exc:
            raise InvalidAddress(f"email '{emails[0]['value']}' is not valid: {exc}") from None
    phones = _ranked([point for point in telecoms if point.get("system") == "sms"]) + _ranked(
        [point for point in telecoms if point.get("system") == "phone"
         and point.get("use") == "mobile"]) + _ranked(
        [point for point in telecoms if point.get("system") == "phone"
         and point.get("use") != "mobile"])
    if not phones:
        return None
    value = phones[0]["value"]
    try:
        e164 = phone_to_e164(value, region)
    except ContactPointError:
        e164 = None
    if e164 is None:
        raise InvalidAddress(f"phone '{value}' is not a valid number for {channel} "
                             "(E.164 or a number of the default region)")
    return e164


def _ranked(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def rank(point: dict[str, Any]) -> int:
        value = point.get("rank")
        return value if isinstance(value, int) else 1_000_000
    return sorted(points, key=rank)


def person_variables(person: dict[str, Any]) -> dict[str, str]:
    """Template variables about the recipient: ``patient_name`` (given names and family),
    ``patient_first_name``, ``patient_last_name`` (from the usual or official name)."""
    names = [name for name in listed(person.get("name")) if isinstance(name, dict)]
    chosen = next((name for use in ("usual", "official") for name in names
                   if name.get("use") == use), names[0] if names else None)
    if chosen is None:
        return {}
    given = [part for part in listed(chosen.get("given")) if isinstance(part, str)]
    family = str(chosen["family"]) if isinstance(chosen.get("family"), str) else ""
    full = " ".join([*given, family]).strip() or str(chosen.get("text") or "").strip()
    found = {"patient_name": full, "patient_first_name": given[0] if given else "",
             "patient_last_name": family}
    return {key: value for key, value in found.items() if value}
