"""NDJSON of an export: a Binary's bytes streamed into ``data`` in any chunking, and sealed
files opening to exactly the bytes sealed."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import orjson
import pytest
from cryptography.fernet import Fernet, MultiFernet
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_server.bulk_export import ndjson
from fhir_server.bulk_export.ndjson import SealBroken, line_with_data, sealed, unsealed

KEY = MultiFernet([Fernet(Fernet.generate_key())])


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _joined(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8))
def test_binary_data_is_the_base64_of_every_chunk(parts: list[bytes]) -> None:
    resource = {"resourceType": "Binary", "id": "b-1", "contentType": "application/pdf"}
    text = asyncio.run(_joined(line_with_data(resource, _chunks(parts))))
    assert text.endswith(b"\n") and text.count(b"\n") == 1
    parsed = orjson.loads(text)
    assert base64.b64decode(parsed.pop("data")) == b"".join(parts)
    assert parsed == resource


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=10), st.integers(1, 64))
def test_sealed_files_open_to_what_was_sealed(parts: list[bytes], reading: int) -> None:
    original = ndjson.SEAL_BYTES
    ndjson.SEAL_BYTES = 256  # several tokens per file
    try:
        stored = asyncio.run(_joined(sealed(_chunks(parts), KEY)))
    finally:
        ndjson.SEAL_BYTES = original
    plain = b"".join(parts)
    # a few bytes can occur in the tokens by chance (b"A" in their base64, "gAAAAA" starts
    # each one); 16 or more cannot, short of a leak
    assert len(plain) < 16 or plain not in stored
    pieces = [stored[start:start + reading] for start in range(0, len(stored), reading)]
    assert asyncio.run(_joined(unsealed(_chunks(pieces), KEY))) == plain


def test_a_file_sealed_under_another_key_is_refused() -> None:
    stored = asyncio.run(_joined(sealed(_chunks([b'{"resourceType":"Patient"}\n']), KEY)))
    other = MultiFernet([Fernet(Fernet.generate_key())])
    with pytest.raises(SealBroken):
        asyncio.run(_joined(unsealed(_chunks([stored]), other)))
    with pytest.raises(SealBroken):
        asyncio.run(_joined(unsealed(_chunks([stored[:-5]]), KEY)))
