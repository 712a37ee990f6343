"""mappings.contact_points: phones to E.164 where they parse, never refused unless they hold no
number at all; emails checked for syntax only."""

from __future__ import annotations

import pytest

from mappings.contact_points import ContactPointError, check_email, phone_to_e164

# ---------------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    "value",
    ["(617) 495-2000", "617-495-2000", "617.495.2000", "6174952000", "+1 617 495 2000",
     "+1 (617) 495-2000", "1-617-495-2000"],
)
def test_us_phone_formats_normalise_to_e164(value: str) -> None:
    assert phone_to_e164(value, "US") == "+16174952000"


@pytest.mark.parametrize(
    ("value", "e164"),
    [("+61 3 9123 4567", "+61391234567"), ("+31 20 123 4567", "+31201234567"),
     ("+44 20 7946 0958", "+442079460958")],
)
def test_international_number_normalises_to_e164(value: str, e164: str) -> None:
    assert phone_to_e164(value, "US") == e164


def test_number_is_read_in_the_default_region() -> None:
    assert phone_to_e164("(03) 9123 4567", "AU") == "+61391234567"


@pytest.mark.parametrize("value", ["(03) 5555 6473", "555-1234", "12", "+999 123"])
def test_number_not_valid_for_region_is_not_refused(value: str) -> None:
    assert phone_to_e164(value, "US") is None


def test_extension_is_dropped_from_e164() -> None:
    assert phone_to_e164("617-495-2000 ext. 12", "US") == "+16174952000"


@pytest.mark.parametrize("value", ["abc", "", "   ", "---", "call me", "(  )"])
def test_value_without_digits_is_refused(value: str) -> None:
    with pytest.raises(ContactPointError):
        phone_to_e164(value, "US")


def test_refusal_names_the_value() -> None:
    with pytest.raises(ContactPointError) as error:
        phone_to_e164("abc", "US")
    assert "'abc'" in str(error.value)


# ---------------------------------------------------------------------------- emails


@pytest.mark.parametrize(
    "value",
    ["ana.rivera@example.org", "a+tag@mail.co.uk", "o'brien@example.com",
     "josé@example.org", "ana@bücher.de", "x@sub.hospital.example.org"],
)
def test_valid_email_is_accepted(value: str) -> None:
    assert check_email(value).lower() == value.lower()


@pytest.mark.parametrize(
    "value",
    ["not-an-email", "a@b", "a@localhost", "a b@example.org", "@example.org", "ana@",
     "ana@@example.org", "ana@example..org", "a@example.test", "a@example.invalid",
     ".ana@example.org", "ana.@example.org"],
)
def test_invalid_email_is_refused(value: str) -> None:
    with pytest.raises(ContactPointError):
        check_email(value)


def test_email_refusal_names_the_value() -> None:
    with pytest.raises(ContactPointError) as error:
        check_email("not-an-email")
    assert "'not-an-email'" in str(error.value)

