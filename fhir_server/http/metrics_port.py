"""``/metrics`` on a port of its own (``FHIR_METRICS_PORT``), so Prometheus can scrape it on an
internal interface while the FHIR port stays public. A minimal HTTP/1.1 responder on asyncio
(one GET per connection): the scrape reads the same metrics as the FHIR port's ``/metrics``.
With several uvicorn workers the first to start binds the port (each worker counts its own
requests; the database aggregates are the same from any)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("fhir_server")
MAX_HEAD = 8192
Exposition = Callable[[], Awaitable[bytes]]


def _answer(status: str, body: bytes, content_type: str) -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode("ascii") + body


async def serve_metrics(exposition: Exposition, *, host: str, port: int,
                        content_type: str) -> asyncio.Server | None:
    """Listen on ``host:port``; None (and a warning) when the port is taken."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            method, _, rest = head[:MAX_HEAD].decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if method in ("GET", "HEAD") and path == "/metrics":
                body = await exposition()
                answer = _answer("200 OK", b"" if method == "HEAD" else body, content_type)
            else:
                answer = _answer("404 Not Found", b"Only GET /metrics is served here\n",
                                 "text/plain; charset=utf-8")
            writer.write(answer)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError):
            pass
        finally:
            writer.close()

    try:
        return await asyncio.start_server(handle, host, port, limit=MAX_HEAD)
    except OSError as error:
        logger.warning("metrics port %s:%s not opened (%s): another worker may hold it",
                       host, port, error.strerror)
        return None
