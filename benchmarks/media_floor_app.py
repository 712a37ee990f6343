"""Minimal HTTP file app: the floor for the file store's throughput in the media benchmark.

It takes a raw-byte ``POST /files`` and writes the body, chunk by chunk as it arrives, into a
new file in ``MEDIA_FLOOR_DIR`` (a plain file copy, no hashing, no database, no fsync: the
server's file store fsyncs, this does not), and answers ``GET /files/{name}`` by reading that
file in 1 MiB pieces. Reads and writes run on the event loop (page cache, no thread hops):
whatever a real file server does on top of this costs time. Run with the server's uvicorn
settings::

    MEDIA_FLOOR_DIR=/path uvicorn benchmarks.media_floor_app:app --workers 1 --no-access-log
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

DIRECTORY = Path(os.environ.get("MEDIA_FLOOR_DIR", "media-floor"))
READ_BYTES = 1024 * 1024
_NAME = re.compile(r"[0-9a-f]{32}")


async def ready(request: Request) -> Response:
    """Readiness probe, same path as the server under test."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def upload(request: Request) -> Response:
    """Write the body to a new file; 201 with its name."""
    name = uuid.uuid4().hex
    with (DIRECTORY / name).open("wb", buffering=0) as file:
        async for chunk in request.stream():
            file.write(chunk)
    return Response(name.encode(), status_code=201, media_type="text/plain")


def _read(path: Path) -> Iterator[bytes]:
    with path.open("rb", buffering=0) as file:
        while chunk := file.read(READ_BYTES):
            yield chunk


async def download(request: Request) -> Response:
    name = request.path_params["name"]
    path = DIRECTORY / name
    if not _NAME.fullmatch(name) or not path.is_file():
        return Response(status_code=404)

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in _read(path):
            yield chunk

    return StreamingResponse(chunks(), media_type="application/octet-stream",
                             headers={"Content-Length": str(path.stat().st_size)})


async def remove(request: Request) -> Response:
    name = request.path_params["name"]
    if _NAME.fullmatch(name):
        (DIRECTORY / name).unlink(missing_ok=True)
    return Response(status_code=204)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    DIRECTORY.mkdir(parents=True, exist_ok=True)
    yield


app = Starlette(routes=[
    Route("/health/ready", ready),
    Route("/files", upload, methods=["POST"]),
    Route("/files/{name}", download, methods=["GET"]),
    Route("/files/{name}", remove, methods=["DELETE"]),
], lifespan=lifespan)
