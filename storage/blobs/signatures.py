"""Does a file's signature (its first bytes) agree with its declared media type? Detection by
the ``filetype`` library; executables never pass, whatever they claim to be. Plain text has no
signature: it passes as ``text/plain`` when its first bytes are UTF-8 without control
characters other than tab, line feed, form feed and carriage return (clinical notes, as EHRs
such as Synthea send them), once an operator puts text/plain on the allow-list."""

from __future__ import annotations

import codecs
import re

import filetype

DEFAULT_ALLOWED_TYPES = ("image/jpeg", "image/png", "application/pdf", "audio/ogg",
                         "audio/mpeg", "video/mp4", "video/webm")
FAMILIES: dict[str, str] = {
    "audio/ogg": "ogg", "video/ogg": "ogg", "application/ogg": "ogg", "audio/opus": "ogg",
    "audio/mpeg": "mpeg", "audio/mp3": "mpeg",
    "video/mp4": "mp4", "audio/mp4": "mp4", "audio/x-m4a": "mp4", "video/x-m4v": "mp4",
    "video/quicktime": "mp4",
    "video/webm": "webm", "audio/webm": "webm", "video/x-matroska": "webm",
    "image/jpeg": "jpeg", "image/png": "png", "application/pdf": "pdf",
}
"""Media types that name the same container: a declared type matches bytes of its family."""
CANONICAL: dict[str, str] = {
    "ogg": "audio/ogg", "mpeg": "audio/mpeg", "mp4": "video/mp4", "webm": "video/webm",
    "jpeg": "image/jpeg", "png": "image/png", "pdf": "application/pdf",
}
"""The name ``detected_type`` gives each family (the spelling of DEFAULT_ALLOWED_TYPES)."""
_EXECUTABLES = (
    b"\x7fELF",  # ELF (Linux, BSD)
    b"MZ",  # PE / DOS (Windows)
    b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf",  # Mach-O big-endian, 32 and 64 bit
    b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe",  # Mach-O little-endian, 32 and 64 bit
    b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf",  # Mach-O universal (also Java classes)
    b"#!",  # scripts
)


PLAIN_TEXT = "text/plain"
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _is_plain_text(head: bytes) -> bool:
    """UTF-8 (a character cut at the end of ``head`` allowed) without control characters."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return bool(text) and _CONTROL.search(text) is None


def _mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, then no reserved version, layer, bitrate or
    sample rate (which keeps out AAC ADTS, layer 00, and random 0xFFFx bytes)."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    bitrate, sample_rate = head[2] >> 4, (head[2] >> 2) & 0b11
    return version != 0b01 and layer != 0b00 and bitrate != 0b1111 and sample_rate != 0b11


def detected_type(head: bytes) -> str | None:
    """The media type the bytes' signature shows (the allowed spelling for the families
    above, e.g. any Ogg stream is ``audio/ogg``), or None when unknown."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"ID3") or _mpeg_audio_frame(head):
        return "audio/mpeg"
    kind = filetype.guess(head)
    if kind is None:
        return None
    mime = str(kind.mime)
    return CANONICAL.get(FAMILIES.get(mime, ""), mime)


def is_executable(head: bytes) -> bool:
    return head.startswith(_EXECUTABLES)


def signature_matches(declared: str, head: bytes) -> bool:
    """Whether the declared MIME type (parameters dropped, any case) agrees with the bytes;
    never for executables or bytes of no known type."""
    media_type = declared.split(";")[0].strip().lower()
    if is_executable(head):
        return False
    if media_type == PLAIN_TEXT:
        return detected_type(head) is None and _is_plain_text(head)
    found = detected_type(head)
    if found is None:
        return False
    return FAMILIES.get(found, found) == FAMILIES.get(media_type, media_type)
