"""Does a file's signature (its first bytes) agree with its declared media type? Detection by
the ``filetype`` library; executables never pass, whatever they claim to be."""

from __future__ import annotations

import filetype

DEFAULT_ALLOWED_TYPES = ("image/jpeg", "image/png", "application/pdf", "audio/ogg",
                         "audio/mpeg", "video/mp4", "video/webm")
FAMILIES: dict[str, str] = {
    "audio/ogg": "ogg", "video/ogg": "ogg", "application/ogg": "ogg", "audio/opus": "ogg",
    "audio/mpeg": "mpeg", "audio/mp3": "mpeg",
    "video/mp4": "mp4", "audio/mp4": "mp4", "audio/x-m4a": "mp4", "video/quicktime": "mp4",
    "video/webm": "webm", "audio/webm": "webm", "video/x-matroska": "webm",
    "image/jpeg": "jpeg", "image/png": "png", "application/pdf": "pdf",
}
_EXECUTABLES = (b"\x7fELF", b"MZ", b"\xfe\xed\xfa", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe",
                b"#!")


def detected_type(head: bytes) -> str | None:
    """The media type the bytes' signature shows, or None when unknown."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF
                                   and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    kind = filetype.guess(head)
    return kind.mime if kind is not None else None


def is_executable(head: bytes) -> bool:
    return head.startswith(_EXECUTABLES)


def signature_matches(declared: str, head: bytes) -> bool:
    media_type = declared.split(";")[0].strip().lower()
    if is_executable(head):
        return False
    found = detected_type(head)
    if found is None:
        return False
    return FAMILIES.get(found, found) == FAMILIES.get(media_type, media_type)
