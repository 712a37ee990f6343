"""HTTP for files: Binary create/update with raw bytes, Binary read as raw bytes (with Range)
or FHIR JSON, ``$download-url`` on Binary and DocumentReference, the signed ``/download``
links, and ``DocumentReference/$stats``. https://hl7.org/fhir/R4/binary.html"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from fhir_server.errors import (
    FhirError,
    Gone,
    MethodNotAllowed,
    PayloadTooLarge,
)
from fhir_server.http import routes
from fhir_server.http.byte_ranges import requested_range
from fhir_server.http.conditional_read import not_modified, not_modified_response
from fhir_server.http.negotiation import JSON_TYPES, XML_TYPES, response_format
from fhir_server.http.preconditions import if_match_version, prefer_return
from fhir_server.http.responses import interaction_response, json_response
from fhir_server.interactions.result import InteractionResult
from fhir_server.media import download_links
from fhir_server.media.binaries import BinaryFile, BinaryRepository
from fhir_server.media.documents import DocumentReferenceRepository
from fhir_server.media.statistics import document_statistics
from fhir_server.security import access
from fhir_server.security.audit import Access
from fhir_server.security.compartment import patients_of
from mappings.fhir_dates import format_instant
from storage.blobs import BlobMissing

STREAM_CHUNK = 1024 * 1024
"""Bytes per read from the blob store while streaming a download: each read is one hop to a
worker thread, so 256 KiB pieces cost a 50 MiB download 200 hops, 1 MiB pieces 50."""


def _binaries(request: Request) -> BinaryRepository:
    repository = routes.services_of(request).repositories["Binary"]
    assert isinstance(repository, BinaryRepository)
    return repository


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() in JSON_TYPES


def _wants_fhir(request: Request) -> bool:
    """A FHIR format was asked for (``_format``, or a JSON or XML Accept), not the raw
    bytes."""
    if request.query_params.get("_format"):
        response_format(None, request.query_params["_format"])
        return True
    accept = (request.headers.get("accept") or "").lower()
    return any(kind.split(";")[0].strip() in JSON_TYPES | XML_TYPES
               for kind in accept.split(","))


def _check_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes "
                              "(FHIR_MAX_UPLOAD_BYTES)")


def _json_limit(repository: BinaryRepository) -> int:
    return repository.policy.max_bytes * 4 // 3 + 64 * 1024


async def create_binary(request: Request) -> Response:
    """POST /Binary: FHIR JSON with base64 data, or the raw bytes with their Content-Type."""
    repository = _binaries(request)
    content_type = request.headers.get("content-type")
    if _is_json(content_type):
        request.path_params["resource_type"] = "Binary"
        return await routes.create_route(request, body_limit=_json_limit(repository))
    _check_length(request, repository.policy.max_bytes)
    context = request.headers.get("x-security-context")
    guard = access.guarded(request, "Binary")
    await guard.authorize_write("create", _proposed(context))
    staged = await repository.stage_stream(content_type, request.stream(), context)
    stored = await guard.audited_write("create", lambda: repository.create_staged(staged),
                                       lambda created: created)
    return interaction_response(InteractionResult(201, "Binary", stored=stored, location=True),
                                base_url=routes.base_url(request),
                                prefer=prefer_return(request.headers.get("prefer")))


async def update_binary(request: Request) -> Response:
    repository = _binaries(request)
    content_type = request.headers.get("content-type")
    if _is_json(content_type):
        request.path_params["resource_type"] = "Binary"
        return await routes.update_route(request, body_limit=_json_limit(repository))
    resource_id = routes.checked_id(request.path_params["resource_id"])
    _check_length(request, repository.policy.max_bytes)
    if_match = if_match_version(request.headers.get("if-match"))
    context = request.headers.get("x-security-context")
    guard = access.guarded(request, "Binary")
    await guard.authorize_write("update", _proposed(context), resource_id=resource_id)
    staged = await repository.stage_stream(content_type, request.stream(), context)
    stored, created = await guard.audited_write(
        "update", lambda: repository.update_staged(resource_id, staged, if_match=if_match),
        lambda result: result[0])
    result = InteractionResult(201 if created else 200, "Binary", stored=stored,
                               location=created)
    return interaction_response(result, base_url=routes.base_url(request),
                                prefer=prefer_return(request.headers.get("prefer")))


def _proposed(security_context: str | None) -> dict[str, Any]:
    """The Binary a raw upload proposes, as far as access control looks at it."""
    resource: dict[str, Any] = {"resourceType": "Binary"}
    if security_context:
        resource["securityContext"] = {"reference": security_context}
    return resource


async def _file(request: Request, binary_id: str,
                opening: EarlyOpen | None = None) -> BinaryFile:
    """The current version's content facts, if the caller may read it (audited); with
    ``opening``, the store starts opening the bytes as soon as their hash is known."""
    repository = _binaries(request)

    async def fetch() -> BinaryFile:
        file = await repository.file(binary_id)
        if opening is not None:
            opening.start(file)
        return file

    return await access.guarded(request, "Binary").audited_read(
        "read", binary_id, fetch, lambda file: file.stored)


class EarlyOpen:
    """A blob opened while its read is checked and audited, so the audit's commit and the
    store's first bytes (an S3 GET) overlap. The bytes leave only after the read was
    allowed and recorded; on any refusal or failure the opened stream is closed unread."""

    def __init__(self, repository: BinaryRepository) -> None:
        self._repository = repository
        self._task: asyncio.Task[Opened] | None = None

    def start(self, file: BinaryFile) -> None:
        self._task = asyncio.create_task(opened(self._repository.store.open(
            file.sha256, chunk_size=STREAM_CHUNK)))

    async def chunks(self) -> Opened | None:
        """The opened bytes (BlobMissing when the store lacks them), handed over once."""
        task, self._task = self._task, None
        return None if task is None else await task

    async def abandon(self) -> None:
        """Close what was opened and not handed over."""
        task, self._task = self._task, None
        if task is None:
            return
        try:
            chunks = await task
        except Exception:  # noqa: BLE001 - nothing opened, nothing to close
            return
        await chunks.aclose()


def _opens_early(request: Request) -> bool:
    """A GET of the whole raw bytes streamed by this server (no Range, no FHIR format, no
    redirect): the case worth overlapping."""
    if request.method != "GET" or "range" in request.headers:
        return False
    if routes.services_of(request).settings.binary_redirect:
        return False
    try:
        return not _wants_fhir(request)
    except FhirError:
        return False  # refused where it always was, after the read


async def read_binary(request: Request) -> Response:
    repository = _binaries(request)
    resource_id = routes.checked_id(request.path_params["resource_id"])
    if not _opens_early(request):
        return await _answer(request, repository, await _file(request, resource_id))
    opening = EarlyOpen(repository)
    try:
        file = await _file(request, resource_id, opening)
        return await _answer(request, repository, file, opening)
    finally:
        await opening.abandon()


async def _answer(request: Request, repository: BinaryRepository, file: BinaryFile,
                  opening: EarlyOpen | None = None) -> Response:
    if not_modified(request, file.stored.version_id, file.stored.last_updated):
        return not_modified_response(file.stored.version_id, file.stored.last_updated)
    headers = {"ETag": f'W/"{file.stored.version_id}"',
               "Last-Modified": format_datetime(file.stored.last_updated, usegmt=True)}
    if _wants_fhir(request):
        resource = await repository.with_data(file.stored, file.sha256)
        return json_response(resource, 200, headers)
    if file.security_context:
        headers["X-Security-Context"] = file.security_context
    gone = Gone(f"Binary/{file.stored.resource_id}: the content is no longer kept")
    settings = routes.services_of(request).settings
    if settings.binary_redirect:
        try:  # an S3 store checks the object exists before signing
            url = await repository.store.presigned_url(
                file.sha256, expires_seconds=settings.presign_seconds,
                content_type=file.content_type, filename=None)
        except BlobMissing:
            raise gone from None
        if url:
            return RedirectResponse(url, status_code=307, headers=headers)
    return await _stream(request, repository, file, headers, gone, opening)


async def _stream(request: Request, repository: BinaryRepository, file: BinaryFile,
                  headers: dict[str, str], gone: Gone,
                  opening: EarlyOpen | None = None) -> Response:
    """The bytes (or the asked range), opened before the answer starts (or taken from
    ``opening``): ``gone`` when the store no longer holds them, not a broken stream."""
    headers["Accept-Ranges"] = "bytes"
    start, end, status = 0, None, 200
    span = requested_range(request.headers.get("range"), request.headers.get("if-range"),
                           size=file.size, last_modified=headers.get("Last-Modified"))
    if span is not None:
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{file.size}"
    headers["Content-Length"] = str((file.size - 1 if end is None else end) - start + 1)
    if request.method == "HEAD":
        if not await repository.store.exists(file.sha256):
            raise gone
        return Response(status_code=status, headers=headers, media_type=file.content_type)
    try:
        chunks = await opening.chunks() if opening is not None else None
        if chunks is None:
            chunks = await opened(repository.store.open(file.sha256, start=start, end=end,
                                                        chunk_size=STREAM_CHUNK))
    except BlobMissing:
        raise gone from None
    return StreamingResponse(chunks, status_code=status, headers=headers,
                             media_type=file.content_type)


async def opened(chunks: AsyncGenerator[bytes, None]) -> Opened:
    """``chunks`` with its first step taken now (the store opens the blob there, so a missing
    one raises here), then the same bytes."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except BaseException:
        await chunks.aclose()
        raise
    return Opened(first, chunks)


class Opened:
    """The first chunk, taken already, then the rest; ``aclose`` closes the store's stream
    even when no byte was read (an unstarted async generator would not)."""

    def __init__(self, first: bytes, rest: AsyncGenerator[bytes, None]) -> None:
        self._first: bytes | None = first
        self._rest = rest

    def __aiter__(self) -> Opened:
        return self

    async def __anext__(self) -> bytes:
        first, self._first = self._first, None
        if first:
            return first
        return await anext(self._rest)

    async def aclose(self) -> None:
        await self._rest.aclose()


async def patch_binary(request: Request) -> Response:
    raise MethodNotAllowed(
        "PATCH is not supported on Binary: update it with PUT (raw bytes or FHIR JSON)",
        headers={"Allow": "GET, HEAD, PUT, DELETE"})


async def binary_type_history(request: Request) -> Response:
    request.path_params["resource_type"] = "Binary"
    return await routes.type_history_route(request)


async def binary_download_url(request: Request) -> Response:
    resource_id = routes.checked_id(request.path_params["resource_id"])
    return await _download_url(request, resource_id)


async def document_download_url(request: Request) -> Response:
    repository = routes.services_of(request).repositories["DocumentReference"]
    assert isinstance(repository, DocumentReferenceRepository)
    resource_id = routes.checked_id(request.path_params["resource_id"])
    await access.guarded(request, "DocumentReference").read(resource_id)
    return await _download_url(request, await repository.first_binary(resource_id))


async def _download_url(request: Request, binary_id: str) -> Response:
    """A Parameters with ``url`` (presigned, or a signed server link) and ``expires``."""
    services = routes.services_of(request)
    repository = _binaries(request)
    file = await _file(request, binary_id)
    seconds = services.settings.presign_seconds
    expires_at = int(time.time()) + seconds
    try:
        url = await repository.store.presigned_url(
            file.sha256, expires_seconds=seconds, content_type=file.content_type,
            filename=None)
    except BlobMissing:
        raise Gone(f"Binary/{binary_id}: the content is no longer kept") from None
    if url is None:
        token = download_links.sign(services.link_key, binary_id, file.stored.version_id,
                                    expires_at)
        url = f"{routes.base_url(request).removesuffix('/fhir')}/download/{token}"
    expires = format_instant(datetime.fromtimestamp(expires_at, UTC))
    return json_response({"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUrl": url}, {"name": "expires", "valueInstant": expires},
        {"name": "binary", "valueReference": {"reference": f"Binary/{binary_id}"}}]})


async def signed_download(request: Request) -> Response:
    """GET /download/{token}: the bytes of the Binary version a valid link names."""
    services = routes.services_of(request)
    binary_id, version_id = download_links.verify(services.link_key,
                                                  request.path_params["token"])
    repository = _binaries(request)
    file = await repository.file_version(binary_id, version_id)
    gone = Gone(f"Binary/{binary_id}: the content is no longer kept")
    if not await repository.store.exists(file.sha256):
        raise gone
    await access.auditor_for(request).record(Access(
        subtype="vread", resource_type="Binary", entities=(f"Binary/{binary_id}",),
        patients=frozenset(patients_of(file.stored.resource or {}, routes.base_url(request))),
        detail="bytes fetched through a signed download link"))
    return await _stream(request, repository, file, {"Cache-Control": "private, no-store"},
                         gone)


async def document_stats(request: Request) -> Response:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    return json_response(await access.run_operation(
        request, "DocumentReference/$stats",
        lambda: document_statistics(routes.services_of(request).engine),
        entities=lambda _: []))


def media_routes(prefix: str = "/fhir") -> list[Route]:
    """Routes ahead of the generic ones: they take the Binary paths whose behaviour differs."""
    return [
        Route(prefix + "/Binary", create_binary, methods=["POST"]),
        Route(prefix + "/Binary/_history", binary_type_history, methods=["GET", "HEAD"]),
        Route(prefix + "/Binary/{resource_id}", read_binary, methods=["GET", "HEAD"]),
        Route(prefix + "/Binary/{resource_id}", update_binary, methods=["PUT"]),
        Route(prefix + "/Binary/{resource_id}", patch_binary, methods=["PATCH"]),
        Route(prefix + "/Binary/{resource_id}/$download-url", binary_download_url,
              methods=["GET"]),
        Route(prefix + "/DocumentReference/$stats", document_stats, methods=["GET"]),
        Route(prefix + "/DocumentReference/{resource_id}/$download-url",
              document_download_url, methods=["GET"]),
        Route("/download/{token}", signed_download, methods=["GET", "HEAD"]),
    ]
