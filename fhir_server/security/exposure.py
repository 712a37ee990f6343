"""Where an unauthenticated server may listen: without FHIR_AUTH_* every caller has every
right, so ``serve`` binds only to the loopback interface unless told otherwise
(``--allow-unauthenticated`` or FHIR_ALLOW_UNAUTHENTICATED=true), and says so loudly."""

from __future__ import annotations

import ipaddress

from fhir_server.settings import Settings

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refusal(settings: Settings, host: str, *, allowed: bool) -> str | None:
    """Why ``serve`` must not start on ``host`` (None: it may)."""
    if settings.auth_enabled or allowed or settings.allow_unauthenticated or is_loopback(host):
        return None
    return (f"refusing to listen on {host} without authorisation: anyone reaching it could "
            "read and change every record. Configure FHIR_AUTH_JWKS, FHIR_AUTH_ISSUER and "
            "FHIR_AUTH_AUDIENCE, listen on 127.0.0.1, or pass --allow-unauthenticated "
            "(FHIR_ALLOW_UNAUTHENTICATED=true) if something in front of it authenticates.")


def warning(settings: Settings, host: str) -> str | None:
    """The warning to print at start when authorisation is off."""
    if settings.auth_enabled:
        return None
    where = ("the loopback interface only" if is_loopback(host)
             else f"{host}, REACHABLE FROM OTHER MACHINES")
    return ("AUTHORISATION IS OFF (no FHIR_AUTH_JWKS/ISSUER/AUDIENCE): every caller may read "
            f"and change every record. Listening on {where}.")
