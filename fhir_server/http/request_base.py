"""What every handler needs of the request: the app's services and this server's base URL."""

from __future__ import annotations

from starlette.requests import Request

from fhir_server.services import Services


def services_of(request: Request) -> Services:
    """What the app built at start (settings, repositories, operations)."""
    services: Services = request.app.state.services
    return services


def base_url(request: Request) -> str:
    """``FHIR_BASE_URL`` if set, else this request's own ``scheme://host/fhir`` (worked out
    once per request: a search asks for it for every link and entry)."""
    configured = services_of(request).settings.base_url
    if configured:
        return configured.rstrip("/")
    state = request.scope.setdefault("state", {})
    own: str | None = state.get("base_url")
    if own is None:
        own = state["base_url"] = str(request.base_url).rstrip("/") + "/fhir"
    return own
