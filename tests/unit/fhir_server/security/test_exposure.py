"""Without authorisation the server listens on loopback only, unless explicitly allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_server import cli
from fhir_server.security.exposure import is_loopback, refusal, warning
from fhir_server.settings import Settings

SECURED = {"auth_jwks": "/keys.json", "auth_issuer": "https://issuer",
           "auth_audience": "https://fhir"}


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("127.8.9.10", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
    ("fhir.example.org", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_unauthenticated_server_may_not_listen_beyond_loopback() -> None:
    settings = Settings()
    assert refusal(settings, "127.0.0.1", allowed=False) is None
    reason = refusal(settings, "0.0.0.0", allowed=False)
    assert reason is not None and "--allow-unauthenticated" in reason
    assert refusal(settings, "0.0.0.0", allowed=True) is None
    assert refusal(Settings(allow_unauthenticated=True), "0.0.0.0", allowed=False) is None
    assert refusal(Settings(**SECURED), "0.0.0.0", allowed=False) is None


def test_warning_is_loud_without_auth_and_silent_with_it() -> None:
    loud = warning(Settings(), "0.0.0.0")
    assert loud is not None and "AUTHORISATION IS OFF" in loud and "OTHER MACHINES" in loud
    assert warning(Settings(**SECURED), "0.0.0.0") is None


def test_auth_settings_come_all_together() -> None:
    with pytest.raises(ValueError, match="FHIR_AUTH_AUDIENCE"):
        Settings(auth_jwks="/keys.json", auth_issuer="https://issuer")


def test_serve_refuses_a_public_host_without_auth(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FHIR_DATA_DIR", str(tmp_path))
    for name in ("FHIR_AUTH_JWKS", "FHIR_AUTH_ISSUER", "FHIR_AUTH_AUDIENCE",
                 "FHIR_ALLOW_UNAUTHENTICATED", "FHIR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err
