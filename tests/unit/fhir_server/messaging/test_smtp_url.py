"""Reading ``FHIR_SMTP_URL`` (pure): schemes, default ports, options, percent-encoded
credentials, and what is refused."""

from __future__ import annotations

import pytest

from fhir_server.messaging.channels.outbox_channel import mask_address
from fhir_server.messaging.channels.smtp_channel import parse_smtp_url


@pytest.mark.parametrize("url", ["http://mail.example.org", "smtp://",
                                 "smtps://mail.example.org?starttls=true",
                                 "smtp://mail.example.org?tls=1",
                                 "smtp://mail.example.org?starttls=maybe"])
def test_bad_smtp_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="FHIR_SMTP_URL"):
        parse_smtp_url(url)


def test_smtp_url_decodes_credentials_and_defaults_ports() -> None:
    server = parse_smtp_url("smtps://user%40example.org:p%40ss%3Aw@mail.example.org")

    assert (server.username, server.password, server.port) == ("user@example.org", "p@ss:w",
                                                                465)
    assert parse_smtp_url("smtp://mail.example.org").port == 25


def test_starttls_and_cafile_options_are_read() -> None:
    server = parse_smtp_url("smtp://mail.example.org:587?starttls=true&cafile=/etc/ca.pem")

    assert (server.starttls, server.implicit_tls, server.cafile) == (True, False, "/etc/ca.pem")


@pytest.mark.parametrize(("address", "masked"), [("+16175550100", "+1617*****00"),
                                                 ("ada@example.org", "a***@example.org"),
                                                 ("12345", "*****")])
def test_mask_address_keeps_too_little_to_reach_anyone(address: str, masked: str) -> None:
    assert mask_address(address) == masked
