"""NDJSON bytes of an export: one resource per line, a Binary's bytes streamed into its base64
``data`` (never whole in memory), and files sealed at rest: on the file store each run of
about a MiB of lines is one Fernet token (the server's encryption keys) on a line of its own,
so no SSN lies in clear on disk, and unsealed as the file is served."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import orjson
from cryptography.fernet import InvalidToken, MultiFernet

SEAL_BYTES = 1024 * 1024
"""Plain bytes per sealed token."""


def line(resource: dict[str, Any]) -> bytes:
    return orjson.dumps(resource, option=orjson.OPT_APPEND_NEWLINE)


async def line_with_data(resource: dict[str, Any],
                         chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """``resource`` with ``data`` the base64 of ``chunks``, as they come, on one line."""
    head = orjson.dumps(resource)
    yield head[:-1] + (b',"data":"' if len(head) > 2 else b'"data":"')
    carry = b""
    async for chunk in chunks:
        joined = carry + chunk
        whole = len(joined) - len(joined) % 3
        if whole:
            yield base64.b64encode(joined[:whole])
        carry = joined[whole:]
    yield base64.b64encode(carry) + b'"}\n'


async def sealed(chunks: AsyncIterable[bytes], fernet: MultiFernet) -> AsyncIterator[bytes]:
    """``chunks`` encrypted: a Fernet token and a newline per SEAL_BYTES of them."""
    pending = bytearray()
    async for chunk in chunks:
        pending += chunk
        while len(pending) >= SEAL_BYTES:
            plain = bytes(pending[:SEAL_BYTES])
            del pending[:SEAL_BYTES]
            yield await asyncio.to_thread(fernet.encrypt, plain) + b"\n"
    if pending:
        yield await asyncio.to_thread(fernet.encrypt, bytes(pending)) + b"\n"


class SealBroken(Exception):
    """A sealed file that no configured key opens (or that is cut short)."""


async def unsealed(chunks: AsyncIterable[bytes], fernet: MultiFernet) -> AsyncIterator[bytes]:
    """The plain bytes of a sealed file, token by token."""
    pending = bytearray()
    async for chunk in chunks:
        start = len(pending)
        pending += chunk
        cut = pending.find(b"\n", start)
        while cut >= 0:
            token = bytes(pending[:cut])
            del pending[:cut + 1]
            yield await _opened(token, fernet)
            cut = pending.find(b"\n")
    if pending:
        raise SealBroken("the sealed file ends inside a token")


async def _opened(token: bytes, fernet: MultiFernet) -> bytes:
    try:
        return await asyncio.to_thread(fernet.decrypt, token)
    except InvalidToken:
        raise SealBroken("no key of FHIR_ENCRYPTION_KEYS opens this export file") from None
