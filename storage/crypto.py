"""Field encryption (Fernet, several keys for rotation) and keyed search hashes for identifiers.

Ciphertexts come from the first key of ``FHIR_ENCRYPTION_KEYS``; every key listed still
decrypts, so keys rotate by putting the new one first. Exact-value search uses an HMAC-SHA256
of the value under ``FHIR_HASH_KEY``, which does not change when encryption keys rotate.
Without configured keys, keys are generated once under ``FHIR_DATA_DIR/keys``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from fhir_server.settings import Settings
from storage.fernet_decryption import FernetDecryptor


class KeyConfigurationError(ValueError):
    """The configured keys cannot be used."""


@dataclass(frozen=True)
class FieldCipher:
    """Encrypts and decrypts field values; computes their keyed search hash. ``decryptor``
    (the same keys) decrypts first when given; Fernet decides whatever it cannot vouch for."""

    fernet: MultiFernet
    hash_key: bytes
    decryptor: FernetDecryptor | None = None

    @classmethod
    def from_keys(cls, keys: Sequence[str | bytes], hash_key: bytes) -> FieldCipher:
        """The cipher of Fernet ``keys`` (the first encrypts, every one decrypts)."""
        return cls(fernet=MultiFernet([Fernet(key) for key in keys]), hash_key=hash_key,
                   decryptor=FernetDecryptor(keys))

    def encrypt(self, value: str) -> str:
        return self.fernet.encrypt(value.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        data = token.encode("ascii")
        if self.decryptor is not None:
            plain = self.decryptor.decrypt(data)
            if plain is not None:
                return plain.decode()
        try:
            return self.fernet.decrypt(data).decode()
        except InvalidToken as exc:
            raise KeyConfigurationError(
                "a stored value cannot be decrypted with FHIR_ENCRYPTION_KEYS"
            ) from exc

    def search_hash(self, value: str) -> str:
        return hmac.new(self.hash_key, value.encode(), hashlib.sha256).hexdigest()


def _read_or_create(path: Path, make: bytes) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(make)
    return make


def ensure_local_keys(settings: Settings) -> None:
    """Create the local key files when no keys are configured (before workers start)."""
    load_cipher(settings)


def _encryption_keys(settings: Settings) -> list[str]:
    """The configured encryption keys in order (the first encrypts), checked, generating a
    local one when none are set."""
    keys_dir = settings.data_dir / "keys"
    if settings.encryption_keys:
        raw_keys = [key.strip() for key in settings.encryption_keys.split(",") if key.strip()]
    else:
        raw_keys = [_read_or_create(keys_dir / "fernet.key", Fernet.generate_key()).decode()]
    try:
        for key in raw_keys:
            Fernet(key)
    except (ValueError, TypeError) as exc:
        raise KeyConfigurationError(
            "FHIR_ENCRYPTION_KEYS must be comma-separated url-safe base64 32-byte Fernet keys"
        ) from exc
    if not raw_keys:
        raise KeyConfigurationError("FHIR_ENCRYPTION_KEYS holds no key")
    return raw_keys


def load_fernets(settings: Settings) -> list[Fernet]:
    """The configured encryption keys in order (the first encrypts), generating a local one
    when none are set."""
    return [Fernet(key) for key in _encryption_keys(settings)]


def load_cipher(settings: Settings) -> FieldCipher:
    """The cipher for the configured keys, generating local ones when none are set."""
    keys_dir = settings.data_dir / "keys"
    keys = _encryption_keys(settings)
    if settings.hash_key:
        hash_key = settings.hash_key.encode()
    else:
        generated = base64.urlsafe_b64encode(secrets.token_bytes(32))
        hash_key = _read_or_create(keys_dir / "hash.key", generated)
    return FieldCipher.from_keys(keys, hash_key)
