"""A real SMTP server for the tests (``aiosmtpd`` in a thread on a free local port) that keeps
every email it accepts, parsed by the email package. Three fixtures: ``smtp_server`` (plain,
no login), ``smtp_tls_server`` (STARTTLS required, then AUTH LOGIN/PLAIN required) and
``smtps_server`` (TLS from the first byte, AUTH offered); the TLS ones present a certificate
for 127.0.0.1 signed by a throwaway CA (``cafile``). ``fail_next`` makes the server refuse the
next message(s) with a given reply, at RCPT or at DATA."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"
USERNAME = "mailer@example.org"
PASSWORD = "p@ss:word/1"


@dataclass(frozen=True)
class ReceivedEmail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpTestServer:
    """What the server received and how to reach it."""

    port: int = 0
    tls: str = "none"
    """none | starttls | implicit"""
    cafile: Path | None = None
    username: str | None = None
    password: str | None = None
    _received: list[ReceivedEmail] = field(default_factory=list)
    _failures: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def messages(self) -> list[ReceivedEmail]:
        with self._lock:
            return list(self._received)

    def url(self, *, login: bool = True) -> str:
        """``FHIR_SMTP_URL`` for this server (with its user and password unless not
        ``login``)."""
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        credentials = ""
        if login and self.username is not None:
            credentials = f"{quote(self.username, safe='')}:{quote(self.password or '', safe='')}@"
        query: dict[str, str] = {}
        if self.tls == "starttls":
            query["starttls"] = "true"
        if self.cafile is not None:
            query["cafile"] = str(self.cafile)
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{scheme}://{credentials}{HOST}:{self.port}{suffix}"

    def fail_next(self, reply: str, *, stage: str = "data", count: int = 1) -> None:
        """Answer the next ``count`` messages with ``reply`` (e.g. ``"451 4.3.0 Try later"``)
        at ``stage`` (``rcpt`` or ``data``); nothing is kept."""
        with self._lock:
            self._failures.extend([(stage, reply)] * count)

    def _failure(self, stage: str) -> str | None:
        with self._lock:
            if self._failures and self._failures[0][0] == stage:
                return self._failures.pop(0)[1]
            return None

    def _keep(self, received: ReceivedEmail) -> None:
        with self._lock:
            self._received.append(received)


class _Handler:
    def __init__(self, server: SmtpTestServer) -> None:
        self._server = server

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        failure = self._server._failure("rcpt")
        if failure is not None:
            return failure
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session,
                          envelope: Envelope) -> str:
        failure = self._server._failure("data")
        if failure is not None:
            return failure
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self._server._keep(ReceivedEmail(str(envelope.mail_from), list(envelope.rcpt_tos),
                                         parsed))
        return "250 Message accepted for delivery"


def _authenticator(server: SmtpTestServer) -> Any:
    def check(smtp: SMTP, session: Session, envelope: Envelope, mechanism: str,
              auth_data: Any) -> AuthResult:
        good = (isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == server.username
                and auth_data.password.decode() == server.password)
        return AuthResult(success=good, handled=False)
    return check


def make_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for 127.0.0.1 and localhost."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fhir-server test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def run_smtp_server(tls: str, directory: Path) -> Iterator[SmtpTestServer]:
    """Start a server (``tls``: none | starttls | implicit), yield it, stop it."""
    server = SmtpTestServer(port=_free_port(), tls=tls)
    options: dict[str, Any] = {}
    if tls != "none":
        server.cafile, certificate, key = make_certificate(directory)
        server.username, server.password = USERNAME, PASSWORD
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificate, key)
        options = {"authenticator": _authenticator(server), "auth_required": True,
                   "auth_require_tls": True}
        if tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        else:  # aiosmtpd counts only STARTTLS as TLS for AUTH (and warns when AUTH is
            # required without it): offered, checked, not required
            options.update(ssl_context=context, auth_require_tls=False, auth_required=False)
    controller = Controller(_Handler(server), hostname=HOST, port=server.port,
                            server_hostname="fhir-test-smtp", **options)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpTestServer]:
    """Plain SMTP, no login."""
    yield from run_smtp_server("none", tmp_path)


@pytest.fixture
def smtp_tls_server(tmp_path: Path) -> Iterator[SmtpTestServer]:
    """STARTTLS required, then login required."""
    yield from run_smtp_server("starttls", tmp_path)


@pytest.fixture
def smtps_server(tmp_path: Path) -> Iterator[SmtpTestServer]:
    """TLS from the first byte, login offered and checked."""
    yield from run_smtp_server("implicit", tmp_path)
