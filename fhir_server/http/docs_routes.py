"""``GET /fhir/docs``: the interactive API documentation (Swagger UI) over ``/fhir/openapi.json``.
Swagger UI's files come from the fastapi-offline package and are served here, so the page works
without reaching any CDN (and on machines with no internet at all)."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from fhir_server.http.openapi import DOCS_PATH, OPENAPI_PATH

ASSETS = Path(fastapi_offline.__file__).parent / "static"
POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
          "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
"""Swagger UI starts from an inline script; everything else comes from this server."""


async def docs_page(request: Request) -> Response:
    page = get_swagger_ui_html(
        openapi_url=OPENAPI_PATH, title="FHIR R4 PRM facade - API",
        swagger_js_url=f"{DOCS_PATH}/static/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_PATH}/static/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_PATH}/static/favicon.png")
    page.headers["Content-Security-Policy"] = POLICY
    return page


def docs_routes() -> list[BaseRoute]:
    return [Route(DOCS_PATH, docs_page, methods=["GET"]),
            Mount(f"{DOCS_PATH}/static", app=StaticFiles(directory=ASSETS), name="docs-static")]
