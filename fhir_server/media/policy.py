"""What an upload must meet: a size limit (413), a MIME allow-list checked against both the
declared type and the bytes' signature (415), and some bytes at all (400)."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from storage.blobs.signatures import signature_matches


@dataclass(frozen=True)
class MediaPolicy:
    max_bytes: int
    allowed_types: frozenset[str]

    def declared_type(self, content_type: str | None) -> str:
        """The declared media type without parameters; 415 unless it is allowed."""
        media_type = (content_type or "").split(";")[0].strip().lower()
        if not media_type:
            raise UnsupportedMediaType("The upload has no Content-Type; send the file's type "
                                       f"(allowed: {', '.join(sorted(self.allowed_types))})")
        if media_type not in self.allowed_types:
            raise UnsupportedMediaType(
                f"Content-Type {media_type[:80]} is not allowed for files; allowed: "
                f"{', '.join(sorted(self.allowed_types))} (FHIR_ALLOWED_MEDIA_TYPES)")
        return media_type

    def check_signature(self, media_type: str, head: bytes) -> None:
        if not signature_matches(media_type, head):
            raise UnsupportedMediaType(
                f"The bytes are not {media_type}: their signature does not match the declared "
                "Content-Type")

    def too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The file is larger than the limit of {self.max_bytes} bytes "
                               "(FHIR_MAX_UPLOAD_BYTES)")

    @staticmethod
    def empty() -> InvalidRequest:
        return InvalidRequest("The upload is empty: a file needs at least one byte")
