"""A test authorisation server: an RSA key pair, its JWKS file, and signed access tokens.

Fixtures: ``token_issuer`` (one per test session) and ``secured_client`` (a TestClient on an
app that requires its tokens)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.settings import Settings

ISSUER = "https://auth.test.example/realm"
AUDIENCE = "https://fhir.test.example/fhir"


@dataclass
class TokenIssuer:
    jwks_path: Path
    private_key: Any
    key_id: str = "test-key-1"

    def token(self, scope: str, *, patient: str | None = None, subject: str = "alice",
              client_id: str | None = "test-app", lifetime: int = 300,
              **claims: Any) -> str:
        now = int(time.time())
        body: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now,
                                "exp": now + lifetime, "scope": scope, "jti": str(uuid.uuid4())}
        if patient is not None:
            body["patient"] = patient
        if client_id is not None:
            body["client_id"] = client_id
        body.update(claims)
        return jwt.encode(body, self.private_key, algorithm="RS256",
                          headers={"kid": self.key_id})

    def headers(self, scope: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(scope, **kwargs)}"}


def new_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def token_issuer(tmp_path_factory: pytest.TempPathFactory) -> TokenIssuer:
    key = new_key()
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": "test-key-1", "use": "sig", "alg": "RS256"})
    path = tmp_path_factory.mktemp("auth") / "jwks.json"
    path.write_text(json.dumps({"keys": [public]}))
    return TokenIssuer(path, key)


def secured(settings: Settings, issuer: TokenIssuer) -> Settings:
    return settings.model_copy(update={"auth_jwks": str(issuer.jwks_path),
                                       "auth_issuer": ISSUER, "auth_audience": AUDIENCE})


@pytest.fixture
def secured_client(settings: Settings, engine: Engine,
                   token_issuer: TokenIssuer) -> Iterator[TestClient]:
    from tests.conftest import empty_tables

    empty_tables(engine)
    with TestClient(create_app(secured(settings, token_issuer), migrate=False)) as client:
        yield client
