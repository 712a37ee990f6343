"""Request bodies read with a size limit: a larger body is refused (413) before it is buffered."""

from __future__ import annotations

from starlette.requests import Request

from fhir_server.errors import InvalidRequest, PayloadTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or PayloadTooLarge as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidRequest(f"Content-Length '{declared[:32]}' is not a number") from None
        if size > limit:
            raise PayloadTooLarge(_too_large(limit))
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(_too_large(limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return f"The request body is larger than the limit of {limit} bytes (FHIR_MAX_BODY_BYTES)"
