"""File signatures against declared types: real minimal headers of every allowed type match
their own type (and family), not others; executables never match."""

from __future__ import annotations

import pytest

from storage.blobs.signatures import DEFAULT_ALLOWED_TYPES, detected_type, signature_matches

HEADERS: dict[str, bytes] = {
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01",
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "audio/ogg": b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                 b"\x00\x00\x00\x00\x00\x00\x01\x1eOpusHead",
    "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" + b"\x00" * 20,
    "video/mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 8,
    "video/webm": b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\xf2\x81\x04B\xf3\x81\x08B\x82"
                  b"\x84webmB\x87\x81\x04",
}
EXECUTABLES = [b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 40, b"MZ\x90\x00\x03\x00" + b"\x00" * 40,
               b"#!/bin/sh\nrm -rf /\n", b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + b"\x00" * 40,
               b"\xce\xfa\xed\xfe\x07\x00\x00\x00" + b"\x00" * 40,
               b"\xfe\xed\xfa\xce\x00\x00\x00\x12" + b"\x00" * 40,
               b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + b"\x00" * 40]


def test_every_allowed_type_has_a_header_here() -> None:
    assert set(HEADERS) == set(DEFAULT_ALLOWED_TYPES)


@pytest.mark.parametrize("media_type", sorted(HEADERS))
def test_header_matches_its_own_type_only(media_type: str) -> None:
    head = HEADERS[media_type]
    assert signature_matches(media_type, head), detected_type(head)
    for other in DEFAULT_ALLOWED_TYPES:
        if other != media_type:
            assert not signature_matches(other, head), (media_type, other)


@pytest.mark.parametrize(("declared", "media_type"), [
    ("video/ogg", "audio/ogg"), ("application/ogg", "audio/ogg"), ("audio/mp4", "video/mp4"),
    ("audio/webm", "video/webm"), ("audio/mp3", "audio/mpeg"),
    ("Application/PDF; charset=binary", "application/pdf"),
])
def test_same_container_families_match(declared: str, media_type: str) -> None:
    assert signature_matches(declared, HEADERS[media_type])


@pytest.mark.parametrize("head", EXECUTABLES)
@pytest.mark.parametrize("declared", sorted(HEADERS))
def test_executables_never_match(head: bytes, declared: str) -> None:
    assert not signature_matches(declared, head)


def test_unknown_bytes_match_nothing() -> None:
    assert not signature_matches("application/pdf", b"hello world, plain text")
    assert detected_type(b"") is None


@pytest.mark.parametrize("media_type", sorted(HEADERS))
def test_detected_type_names_the_allowed_type(media_type: str) -> None:
    assert detected_type(HEADERS[media_type]) == media_type


@pytest.mark.parametrize(("head", "expected"), [
    (b"OggS\x00\x02" + b"\x00" * 22 + b"\x01\x1e\x01vorbis", "audio/ogg"),
    (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom\x00\x00\x00\x00", "video/mp4"),
    (b"\xff\xfb\x90\x64" + b"\x00" * 40, "audio/mpeg"),  # MPEG-1 layer III frame, no ID3
    (b"\xff\xf3\x48\xc4" + b"\x00" * 40, "audio/mpeg"),  # MPEG-2 layer III frame
])
def test_detected_type_normalises_container_families(head: bytes, expected: str) -> None:
    assert detected_type(head) == expected


@pytest.mark.parametrize("head", [
    b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\x00" * 40,  # AAC ADTS: layer 00
    b"\xff\xff\xff\xff" + b"\x00" * 40,  # reserved bitrate and sample rate
    b"\xff\xeb\x90\x64" + b"\x00" * 40,  # reserved MPEG version 01
])
def test_sync_bits_alone_are_not_mpeg_audio(head: bytes) -> None:
    assert detected_type(head) != "audio/mpeg"
    assert not signature_matches("audio/mpeg", head)


@pytest.mark.parametrize("head", [
    b"Clinical note: patient seen for follow-up.\r\n\tBP 120/80\n",
    "Señora Núñez, revisión\n".encode(),
    "cut in the middle of a character: \u00e9".encode()[:-1],  # a head may end mid-character
])
def test_utf8_text_is_plain_text(head: bytes) -> None:
    assert signature_matches("text/plain; charset=utf-8", head)


@pytest.mark.parametrize("head", [
    HEADERS["application/pdf"], HEADERS["image/png"], b"text\x00with a NUL",
    b"\xff\xfe n\x00o\x00t\x00 UTF-8", b"escape \x1b[31m sequences", b"", *EXECUTABLES,
])
def test_binary_or_control_bytes_are_not_plain_text(head: bytes) -> None:
    assert not signature_matches("text/plain", head)
