"""How this server describes its security to clients: the SMART configuration document
(https://hl7.org/fhir/smart-app-launch/conformance.html) and CapabilityStatement.rest.security."""

from __future__ import annotations

from typing import Any

from fhir_server.security.scopes import NAMED_PERMISSIONS
from fhir_server.settings import Settings

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
TYPES = ("Patient", "DocumentReference", "Binary", "Communication", "CommunicationRequest",
         "Coverage")


def scopes_supported() -> list[str]:
    listed = [f"{context}/{kind}.cruds" for context in ("patient", "user", "system")
              for kind in (*TYPES, "*")]
    listed += [f"{context}/AuditEvent.rs" for context in ("user", "system")]
    listed += [f"{context}/Patient.{permission}" for context in ("user", "system")
               for permission in sorted(NAMED_PERMISSIONS)]
    return listed


def smart_configuration(settings: Settings) -> dict[str, Any]:
    """The ``.well-known/smart-configuration`` document (auth configured only)."""
    document: dict[str, Any] = {
        "issuer": settings.auth_issuer,
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
        "scopes_supported": scopes_supported(),
        "response_types_supported": ["code"],
        "capabilities": ["launch-standalone", "client-public", "client-confidential-asymmetric",
                         "context-standalone-patient", "permission-patient", "permission-user",
                         "permission-v1", "permission-v2"],
        "code_challenge_methods_supported": ["S256"],
    }
    if settings.auth_jwks and settings.auth_jwks.startswith("https://"):
        document["jwks_uri"] = settings.auth_jwks
    if settings.auth_authorize_url:
        document["authorization_endpoint"] = settings.auth_authorize_url
    if settings.auth_token_url:
        document["token_endpoint"] = settings.auth_token_url
    return document


def rest_security(settings: Settings) -> dict[str, Any]:
    """CapabilityStatement.rest.security for these settings."""
    if not settings.auth_enabled:
        return {"cors": True, "description": (
            "No authorisation is configured: the server answers only on the loopback "
            "interface unless started with --allow-unauthenticated.")}
    security: dict[str, Any] = {
        "cors": True,
        "service": [{"coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}],
                     "text": "OAuth2 Bearer tokens with SMART v1/v2 scopes"}],
        "description": (
            "Every request needs a Bearer JWT signed by a key of the configured JWKS, with "
            f"issuer {settings.auth_issuer} and audience {settings.auth_audience}. Scopes: "
            "SMART v1/v2 patient/, user/, system/ scopes per type and interaction; "
            "user/Patient.$match and user/Patient.$merge for those operations; "
            "user/Patient.$reveal-ssn to read SSNs unmasked; user/AuditEvent.rs to read the "
            "audit trail. See .well-known/smart-configuration."),
    }
    uris = [{"url": "token", "valueUri": settings.auth_token_url},
            {"url": "authorize", "valueUri": settings.auth_authorize_url}]
    present = [uri for uri in uris if uri["valueUri"]]
    if present:
        security["extension"] = [{"url": OAUTH_URIS, "extension": present}]
    return security
