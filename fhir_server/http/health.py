"""Liveness (``/health``) and readiness (``/health/ready``: the database answers and the
process is not draining after a SIGTERM)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from storage.database import database_ready


async def health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    draining = getattr(request.app.state, "draining", None)
    if draining is not None and draining.active:
        return JSONResponse({"status": "draining"}, status_code=503)
    if await database_ready(request.app.state.services.engine):
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "database unreachable"}, status_code=503)


def health_routes() -> list[Route]:
    return [Route("/health", health, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"])]
