"""Bearer JWT authentication: every FHIR request needs a valid token once FHIR_AUTH_* are set;
the CapabilityStatement and the SMART configuration stay public and describe the security."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.security.tokens import token_verifier
from fhir_server.settings import Settings
from tests.conftest import empty_tables
from tests.factories import issue_codes, patient
from tests.tokens import AUDIENCE, ISSUER, TokenIssuer, new_key, secured


def test_request_without_token_is_401_with_bearer_challenge(secured_client: TestClient) -> None:
    response = secured_client.get("/fhir/Patient")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert issue_codes(response.json()) == ["login"]


@pytest.mark.parametrize("path", ["/fhir/Patient/x", "/fhir/DocumentReference",
                                  "/fhir/Binary/x", "/fhir/AuditEvent", "/fhir",
                                  "/messaging/templates", "/fhir/Patient/$demographics"])
def test_every_protected_path_needs_a_token(secured_client: TestClient, path: str) -> None:
    assert secured_client.get(path).status_code == 401


def test_valid_token_with_scope_is_served(secured_client: TestClient,
                                          token_issuer: TokenIssuer) -> None:
    response = secured_client.get("/fhir/Patient", headers=token_issuer.headers("user/Patient.rs"))
    assert response.status_code == 200
    assert response.json()["type"] == "searchset"


def test_expired_token_is_401_naming_expiry(secured_client: TestClient,
                                            token_issuer: TokenIssuer) -> None:
    token = token_issuer.token("user/Patient.rs", lifetime=-3600)
    response = secured_client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json()["issue"][0]["diagnostics"]
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(("claims", "named"), [
    ({"aud": "https://other.example/fhir"}, "audience"),
    ({"iss": "https://evil.example"}, "issuer"),
])
def test_wrong_audience_or_issuer_is_401(secured_client: TestClient, token_issuer: TokenIssuer,
                                         claims: dict[str, str], named: str) -> None:
    token = token_issuer.token("user/Patient.rs", **claims)
    response = secured_client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert named in response.json()["issue"][0]["diagnostics"]


def test_token_signed_by_another_key_is_401(secured_client: TestClient) -> None:
    now = int(time.time())
    forged = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 60,
                         "scope": "user/*.cruds"}, new_key(), algorithm="RS256",
                        headers={"kid": "test-key-1"})
    response = secured_client.get("/fhir/Patient", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


@pytest.mark.parametrize("algorithm_token", ["hs256", "none"])
def test_symmetric_and_unsigned_tokens_are_refused(secured_client: TestClient,
                                                   algorithm_token: str) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": int(time.time()) + 60,
              "scope": "user/*.cruds"}
    if algorithm_token == "hs256":
        token = jwt.encode(claims, "a-shared-secret-of-32-bytes-long!", algorithm="HS256")
    else:
        token = jwt.encode(claims, None, algorithm="none")
    response = secured_client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "not accepted" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("header", ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer not.a.jwt",
                                    "Bearer " + "x" * 20_000])
def test_malformed_authorization_is_401(secured_client: TestClient, header: str) -> None:
    response = secured_client.get("/fhir/Patient", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"


def test_metadata_is_public_and_describes_smart(secured_client: TestClient) -> None:
    response = secured_client.get("/fhir/metadata")
    assert response.status_code == 200
    security = response.json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert ISSUER in security["description"]


def test_smart_configuration_is_public(secured_client: TestClient) -> None:
    response = secured_client.get("/fhir/.well-known/smart-configuration")
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == ISSUER
    assert "permission-v2" in document["capabilities"]
    assert "user/Patient.$merge" in document["scopes_supported"]


def test_smart_configuration_without_auth_is_404(client: TestClient) -> None:
    assert client.get("/fhir/.well-known/smart-configuration").status_code == 404
    assert "loopback" in client.get("/fhir/metadata").json()["rest"][0]["security"]["description"]


def test_without_auth_configured_no_token_is_needed(client: TestClient) -> None:
    assert client.post("/fhir/Patient", json=patient()).status_code == 201


@pytest.fixture
def jwks_url(token_issuer: TokenIssuer) -> Iterator[str]:
    """The issuer's JWKS served over HTTP on loopback, as an authorisation server serves it."""
    body = token_issuer.jwks_path.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


def test_jwks_from_a_url_verifies_tokens(settings: Settings, engine: Engine,
                                         token_issuer: TokenIssuer, jwks_url: str) -> None:
    empty_tables(engine)
    configured = secured(settings, token_issuer).model_copy(update={"auth_jwks": jwks_url})
    with TestClient(create_app(configured, migrate=False)) as client:
        assert client.get("/fhir/Patient").status_code == 401
        good = client.get("/fhir/Patient", headers=token_issuer.headers("user/Patient.s"))
        assert good.status_code == 200
        tampered = token_issuer.token("user/Patient.s") + "x"
        assert client.get("/fhir/Patient", headers={
            "Authorization": f"Bearer {tampered}"}).status_code == 401


def test_plain_http_jwks_is_refused_beyond_loopback(settings: Settings,
                                                   token_issuer: TokenIssuer) -> None:
    configured = secured(settings, token_issuer).model_copy(
        update={"auth_jwks": "http://keys.example.org/jwks.json"})
    with pytest.raises(ValueError, match="https"):
        token_verifier(configured)
