"""The bulk Fernet decryptor against cryptography's Fernet: the same plaintext for every token
Fernet accepts, and no answer (so Fernet decides) for every token it would refuse."""

from __future__ import annotations

import base64
import threading

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.crypto import FieldCipher, KeyConfigurationError
from storage.fernet_decryption import FernetDecryptor

KEYS = [Fernet.generate_key() for _ in range(3)]
FERNETS = [Fernet(key) for key in KEYS]
LIBRARY = MultiFernet(FERNETS)
DECRYPTOR = FernetDecryptor(KEYS)


def _library_answer(token: bytes) -> bytes | None:
    try:
        return LIBRARY.decrypt(token)
    except InvalidToken:
        return None


@given(plaintext=st.binary(max_size=80), key_index=st.integers(0, len(KEYS) - 1))
def test_every_key_decrypts_what_fernet_made(plaintext: bytes, key_index: int) -> None:
    token = FERNETS[key_index].encrypt(plaintext)
    assert DECRYPTOR.decrypt(token) == plaintext == LIBRARY.decrypt(token)


@given(plaintext=st.binary(min_size=1, max_size=40), position=st.integers(min_value=0),
       flip=st.integers(1, 255))
def test_a_changed_byte_gets_no_answer_as_fernet_refuses_it(plaintext: bytes, position: int,
                                                            flip: int) -> None:
    data = bytearray(base64.urlsafe_b64decode(FERNETS[0].encrypt(plaintext)))
    data[position % len(data)] ^= flip
    token = base64.urlsafe_b64encode(bytes(data))
    assert DECRYPTOR.decrypt(token) is None
    assert _library_answer(token) is None


@settings(max_examples=300)
@given(token=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                       st.binary(min_size=57, max_size=120).map(base64.urlsafe_b64encode)))
def test_any_bytes_get_the_fernet_answer_or_none_and_never_an_error(token: bytes) -> None:
    answer = DECRYPTOR.decrypt(token)
    assert answer is None or answer == _library_answer(token)


def test_a_token_of_another_key_gets_no_answer() -> None:
    token = Fernet(Fernet.generate_key()).encrypt(b"123-45-6789")
    assert DECRYPTOR.decrypt(token) is None


def test_a_verified_token_with_broken_padding_gets_no_answer() -> None:
    """A token whose MAC is right (made with the signing key) but whose padding is not PKCS7:
    Fernet refuses it, and so does this."""
    raw = base64.urlsafe_b64decode(KEYS[0])
    iv = bytes(16)
    encryptor = Cipher(algorithms.AES(raw[16:]), modes.CBC(iv)).encryptor()
    body = b"\x80" + bytes(8) + iv + encryptor.update(b"no padding here!") + encryptor.finalize()
    signer = hmac.HMAC(raw[:16], hashes.SHA256())
    signer.update(body)
    token = base64.urlsafe_b64encode(body + signer.finalize())
    assert DECRYPTOR.decrypt(token) is None
    assert _library_answer(token) is None


def test_threads_decrypt_side_by_side() -> None:
    tokens = {FERNETS[i % 3].encrypt(f"value {i}".encode()): f"value {i}".encode()
              for i in range(200)}
    wrong: list[bytes] = []

    def work() -> None:
        for _ in range(5):
            wrong.extend(token for token, plain in tokens.items()
                         if DECRYPTOR.decrypt(token) != plain)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_a_key_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        FernetDecryptor([base64.urlsafe_b64encode(bytes(16))])


def test_the_field_cipher_decrypts_rotated_keys_and_refuses_others() -> None:
    cipher = FieldCipher.from_keys([key.decode() for key in KEYS], b"hash key")
    assert cipher.decryptor is not None
    assert cipher.decrypt(cipher.encrypt("123-45-6789")) == "123-45-6789"
    assert cipher.decrypt(FERNETS[2].encrypt(b"987-65-4321").decode()) == "987-65-4321"
    with pytest.raises(KeyConfigurationError):
        cipher.decrypt(Fernet(Fernet.generate_key()).encrypt(b"x").decode())
