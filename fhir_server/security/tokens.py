"""Bearer JWT access tokens: signature against the configured JWKS, then issuer, audience and
expiry (PyJWT does the cryptography and the claim checks).

The JWKS comes from a file (read at start, read again when a token names a key id it lacks)
or from an https URL (fetched in a worker thread, cached for five minutes). Only asymmetric
algorithms are accepted: a shared-secret (HS*) or unsigned (``none``) token is refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from fhir_server.errors import Unauthorized
from fhir_server.security.exposure import is_loopback
from fhir_server.security.scopes import UNRESTRICTED, ScopeSet
from fhir_server.settings import Settings

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA"]
LEEWAY_SECONDS = 30
MAX_TOKEN_CHARS = 16_384


@dataclass(frozen=True)
class Principal:
    """Who is asking: the token's subject, client and scopes, and the patient it was launched
    for (SMART ``patient`` launch context), or the anonymous caller when auth is off."""

    scopes: ScopeSet
    subject: str | None = None
    client_id: str | None = None
    issuer: str | None = None
    patient: str | None = None
    fhir_user: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.subject is not None


ANONYMOUS = Principal(scopes=UNRESTRICTED)


def unauthorized(description: str) -> Unauthorized:
    """A 401 whose WWW-Authenticate tells the client why (RFC 6750 section 3)."""
    quoted = description.replace('"', "'")
    return Unauthorized(description, headers={
        "WWW-Authenticate": f'Bearer realm="fhir", error="invalid_token", '
                            f'error_description="{quoted}"'})


class _KeySource:
    """The signing key for a token's header, from a JWKS file or URL."""

    def __init__(self, location: str) -> None:
        self._location = location
        if location.startswith("http://") and not is_loopback(urlsplit(location).hostname or ""):
            raise ValueError("FHIR_AUTH_JWKS must be an https URL (plain http only on loopback)")
        self._client = (PyJWKClient(location, cache_jwk_set=True, lifespan=300, timeout=10)
                        if location.startswith(("https://", "http://")) else None)
        self._keys: PyJWKSet | None = None if self._client else self._read_file()

    def _read_file(self) -> PyJWKSet:
        return PyJWKSet.from_json(Path(self._location).read_text())

    async def key_for(self, token: str, header: dict[str, Any]) -> PyJWK:
        kid = header.get("kid")
        if self._client is not None:
            try:
                return await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
            except jwt.PyJWKClientError as exc:
                raise unauthorized(f"no signing key for this token: {exc}") from None
        assert self._keys is not None
        key = self._find(self._keys, kid)
        if key is None and kid is not None:
            self._keys = await asyncio.to_thread(self._read_file)
            key = self._find(self._keys, kid)
        if key is None:
            raise unauthorized("no key of the configured JWKS signed this token")
        return key

    @staticmethod
    def _find(keys: PyJWKSet, kid: str | None) -> PyJWK | None:
        if kid is None:
            return keys.keys[0] if len(keys.keys) == 1 else None
        return next((key for key in keys.keys if key.key_id == kid), None)


class TokenVerifier:
    """Checks ``Authorization: Bearer`` tokens and turns them into a Principal."""

    def __init__(self, *, jwks: str, issuer: str, audience: str) -> None:
        self._keys = _KeySource(jwks)
        self.issuer = issuer
        self.audience = audience

    async def principal(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthorized("This server needs a Bearer access token (Authorization header)",
                               headers={"WWW-Authenticate": 'Bearer realm="fhir"'})
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("the Authorization header must be 'Bearer <token>'")
        if len(token) > MAX_TOKEN_CHARS:
            raise unauthorized("the token is too long")
        return await self.verify(token)

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise unauthorized("the token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise unauthorized(f"tokens signed with '{str(header.get('alg'))[:16]}' are not "
                               f"accepted; use one of {', '.join(ALGORITHMS)}")
        key = await self._keys.key_for(token, header)
        try:
            claims = jwt.decode(
                token, key=key, algorithms=ALGORITHMS, audience=self.audience,
                issuer=self.issuer, leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise unauthorized("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise unauthorized(f"the token's audience is not {self.audience}") from None
        except jwt.InvalidIssuerError:
            raise unauthorized(f"the token's issuer is not {self.issuer}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized(f"the token has no '{exc.claim}' claim") from None
        except jwt.InvalidTokenError as exc:
            raise unauthorized(f"the token is not valid: {type(exc).__name__}") from None
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The Principal a verified token's claims describe."""
    patient = claims.get("patient")
    client = claims.get("client_id") or claims.get("azp")
    fhir_user = claims.get("fhirUser")
    return Principal(
        scopes=ScopeSet.from_claim(claims.get("scope", claims.get("scp"))),
        subject=str(claims["sub"]),
        client_id=str(client) if client is not None else None,
        issuer=str(claims.get("iss")),
        patient=str(patient) if patient is not None else None,
        fhir_user=str(fhir_user) if fhir_user is not None else None,
    )


def token_verifier(settings: Settings) -> TokenVerifier | None:
    """The verifier FHIR_AUTH_* configure, or None when authorisation is off."""
    if not settings.auth_enabled:
        return None
    assert settings.auth_jwks and settings.auth_issuer and settings.auth_audience
    return TokenVerifier(jwks=settings.auth_jwks, issuer=settings.auth_issuer,
                         audience=settings.auth_audience)
