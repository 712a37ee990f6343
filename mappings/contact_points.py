"""PRM rules for phones and emails: E.164 normalisation (phonenumbers), email syntax (email-validator)."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

_DIGIT = re.compile(r"\d")


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
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_email(value: str) -> str:
    """The normalised address; raises ContactPointError when the syntax is not an email's."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ContactPointError(f"'{value}' is not a valid email address: {exc}") from exc
