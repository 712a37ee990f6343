"""PRM rules for phones and emails: E.164 normalisation (phonenumbers), email syntax (email-validator)."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

_DIGIT = re.compile(r"\d")
# Plain ASCII addresses (dot-atom local part, LDH labels, alphabetic TLD) that email-validator
# is known to accept; anything else goes to email-validator for the verdict and its message.
_PLAIN_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


class ContactPointError(ValueError):
    """The value cannot be a phone number or an email address at all."""


def phone_to_e164(value: str, default_region: str) -> str | None:
    """The E.164 form of ``value``, or None when it does not parse as a valid number.

    A number that is not valid for the default region is kept as sent (the official examples
    carry Australian, Dutch and fictional 555 numbers); only a value without a phone number in
    it at all is refused.
    """
    if not _DIGIT.search(value):
        raise ContactPointError(f"'{value}' is not a phone number")
    try:
        parsed = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.NOT_A_NUMBER:
            raise ContactPointError(f"'{value}' is not a phone number") from exc
        return None
    # the default region first: checking it alone is several times cheaper than finding the
    # region among all that share a country code (+1 has 25); the answer is the same
    if not (phonenumbers.is_valid_number_for_region(parsed, default_region)
            or phonenumbers.is_valid_number(parsed)):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_email(value: str) -> str:
    """The address if its syntax is an email's; raises ContactPointError otherwise."""
    if len(value) <= 254 and _PLAIN_EMAIL.match(value) and _is_public_domain(value):
        local_part = value.split("@", 1)[0]
        if len(local_part) <= 64 and all(len(label) <= 63 for label in value.split("@")[1].split(".")):
            return value
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ContactPointError(f"'{value}' is not a valid email address: {exc}") from exc


def _is_public_domain(address: str) -> bool:
    domain = address.rsplit("@", 1)[1].lower()
    return not any(domain == name or domain.endswith("." + name) for name in _SPECIAL_USE)
