"""Time-limited download links: an S3 presigned URL where the store gives one, otherwise a
server URL ``/download/{token}`` whose token names the Binary version and expiry, signed with
HMAC-SHA256 under the server's hash key (so it needs no session and cannot be altered)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson

from fhir_server.errors import Forbidden


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, binary_id: str, version_id: int, expires_at: int) -> str:
    payload = _b64(orjson.dumps({"b": binary_id, "v": version_id, "e": expires_at}))
    signature = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def verify(key: bytes, token: str, *, at: float | None = None) -> tuple[str, int]:
    """(binary id, version) of a valid, unexpired token; Forbidden otherwise."""
    payload, _, signature = token.partition(".")
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(signature, expected):
        raise Forbidden("The download link is not valid")
    try:
        claims = orjson.loads(_unb64(payload))
        binary_id, version_id, expires_at = str(claims["b"]), int(claims["v"]), int(claims["e"])
    except (ValueError, KeyError, TypeError):
        raise Forbidden("The download link is not valid") from None
    if (at if at is not None else time.time()) > expires_at:
        raise Forbidden("The download link has expired")
    return binary_id, version_id
