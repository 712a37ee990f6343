"""Templates to HTML responses: one Jinja2 environment (autoescaped, strict about undefined
names), the console's security headers on every page (no script may run, nothing is framed or
cached), and the CSRF cookie set when the page minted it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from fhir_server.console.session import CsrfGuard

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PATH = "/console/static"
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def percent(share: float) -> str:
    """A probability as a percentage that never rounds up to a false 100 %."""
    if share > 0.999:
        return "> 99.9 %"
    return f"{share * 100:.1f} %"


@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["static"] = STATIC_PATH
    env.filters["bits"] = lambda weight: f"{weight:+.1f}"
    env.filters["percent"] = percent
    return env


def page(request: Request, template: str, context: dict[str, Any], *,
         guard: CsrfGuard, login: bool, status: int = 200) -> HTMLResponse:
    """The rendered page; ``login`` says whether the console has a login (auth configured)."""
    html = environment().get_template(template).render(
        **context, csrf=guard.token, login=login, path=request.url.path)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    guard.set_cookie(request, response)
    return response
