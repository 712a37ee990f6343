"""Email over SMTP (stdlib ``smtplib``), configured by one URL (``FHIR_SMTP_URL``):

- ``smtp://host:port``: plain SMTP (port 25 by default);
- ``smtp://host:587?starttls=true``: upgraded with STARTTLS before anything else is said;
- ``smtps://host:465``: TLS from the first byte;
- ``user:password@`` (percent-encoded) logs in; ``cafile=/path/ca.pem`` trusts that CA (for
  a private relay); ``timeout=30`` seconds per connection.

One connection per message: nothing is shared between the worker threads, and a relay that
drops idle connections costs nothing. Replies 4xx, timeouts and refused connections are
transient; 5xx (535 authentication included) and certificates that do not verify are
permanent. A retried message keeps its Message-ID, so a receiver may drop a duplicate; SMTP
itself cannot say whether a message went out (``find_sent`` raises CannotReconcile)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from fhir_server.messaging.channels.base import (
    CannotReconcile,
    OutgoingMessage,
    PermanentSendError,
    SendReceipt,
    TransientSendError,
)

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
QUERY_OPTIONS = frozenset({"starttls", "cafile", "timeout"})


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to reach the relay, parsed from ``FHIR_SMTP_URL``."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None
    cafile: str | None
    timeout: float


def parse_smtp_url(url: str) -> SmtpServer:
    """``FHIR_SMTP_URL`` as an SmtpServer; ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"FHIR_SMTP_URL must start with smtp:// or smtps://, not {url!r}")
    if not parts.hostname:
        raise ValueError("FHIR_SMTP_URL names no host")
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - QUERY_OPTIONS)
    if unknown:
        raise ValueError(f"FHIR_SMTP_URL: unknown option(s) {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(QUERY_OPTIONS))})")
    starttls = _flag(query.get("starttls", "false"))
    if starttls and parts.scheme == "smtps":
        raise ValueError("FHIR_SMTP_URL: starttls applies to smtp://, smtps:// is TLS already")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        timeout = float(query.get("timeout", "30"))
    except ValueError as exc:
        raise ValueError(f"FHIR_SMTP_URL: {exc}") from exc
    return SmtpServer(
        host=parts.hostname, port=port, implicit_tls=parts.scheme == "smtps",
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        cafile=query.get("cafile"), timeout=timeout)


def _flag(value: str) -> bool:
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise ValueError(f"FHIR_SMTP_URL: starttls must be true or false, not {value!r}")


class SmtpChannel:
    """``email``: one text/plain UTF-8 message per OutgoingMessage, From ``FHIR_EMAIL_FROM``,
    Message-ID ``<idempotency key@sender's domain>``."""

    name = "email"

    def __init__(self, server: SmtpServer, *, sender: str) -> None:
        self._server = server
        self._sender = sender
        self._envelope_from = parseaddr(sender)[1]
        if "@" not in self._envelope_from:
            raise ValueError(f"FHIR_EMAIL_FROM is not an email address: {sender!r}")
        self._domain = self._envelope_from.rsplit("@", 1)[1]
        self._tls = ssl.create_default_context(cafile=server.cafile)

    def send(self, message: OutgoingMessage) -> SendReceipt:
        email = self.compose(message)
        try:
            connection = self._connect()
            try:
                connection.send_message(email, from_addr=self._envelope_from,
                                        to_addrs=[message.address])
            finally:
                _quit(connection)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _reply_error(code, reply) from exc
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentSendError(f"SMTP server: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentSendError(f"SMTP TLS certificate: {exc.verify_message}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientSendError(f"SMTP server unreachable: {type(exc).__name__}: {exc}"
                                     ) from exc
        return SendReceipt(email["Message-ID"], "sent")

    def find_sent(self, message: OutgoingMessage, since: datetime) -> SendReceipt | None:
        raise CannotReconcile("SMTP keeps no record of sent messages to ask")

    def compose(self, message: OutgoingMessage) -> EmailMessage:
        """The email as it goes on the wire."""
        email = EmailMessage()
        email["From"] = self._sender
        email["To"] = message.address
        if message.subject:
            email["Subject"] = message.subject
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = f"<{message.idempotency_key}@{self._domain}>"
        email.set_content(message.body, subtype="plain", charset="utf-8")
        return email

    def _connect(self) -> smtplib.SMTP:
        server = self._server
        connection: smtplib.SMTP
        if server.implicit_tls:
            connection = smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout,
                                          context=self._tls)
        else:
            connection = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        try:
            connection.ehlo()
            if server.starttls:
                connection.starttls(context=self._tls)
                connection.ehlo()
            if server.username is not None:
                connection.login(server.username, server.password or "")
        except BaseException:
            connection.close()
            raise
        return connection


def _quit(connection: smtplib.SMTP) -> None:
    """Say goodbye; the message is already accepted, so a failing QUIT is no error."""
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


def _reply_error(code: int, reply: bytes | str) -> TransientSendError | PermanentSendError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    error = f"SMTP {code}: {text}"
    if 400 <= code < 500:
        return TransientSendError(error)
    return PermanentSendError(error)
