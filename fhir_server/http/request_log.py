"""One structured JSON line per HTTP request on the ``fhir_server.access`` logger, as a plain
ASGI layer (no per-request objects beyond a dict and a closure).

A line holds ``time``, ``request_id`` (the client's ``X-Request-Id`` when it is a sane token,
else a new one; always echoed in the response's ``X-Request-Id``), ``method``, ``route`` (the
matched route template such as ``/fhir/Patient/{resource_id}``, with ``{resource_type}``
filled in only for a served type; never the URL: no ids, no search values), ``status``,
``duration_ms`` and ``client_id`` (the verified token's ``client_id`` when authorisation is
on, else the ``X-Client-Id`` header, when it is a sane token; else null). Nothing from bodies,
queries or other headers is logged, so no line can carry PHI.

Observers (the metrics) receive the same :class:`RequestRecord` for every request."""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS_LOGGER = "fhir_server.access"
REQUEST_ID_HEADER = b"x-request-id"
CLIENT_ID_HEADER = b"x-client-id"
_TOKEN = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")

access_logger = logging.getLogger(ACCESS_LOGGER)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What one finished request was, with nothing a client wrote except two header tokens."""

    request_id: str
    method: str
    route: str | None
    """The route template with a served type filled in (``/fhir/Patient/{resource_id}``), or
    None when no route matched (a 404 on an unknown path)."""
    resource_type: str | None
    """The served FHIR type the path names, else None."""
    status: int
    duration: float
    """Seconds from the request reaching this layer to the end of the response (or the error)."""
    client_id: str | None


RequestObserver = Callable[[RequestRecord], None]


class RequestLogMiddleware:
    """Writes the access line and tells the observers; outermost, so it sees every response."""

    def __init__(self, app: ASGIApp, *, is_served: Callable[[str], bool] = lambda _: False,
                 observers: Sequence[RequestObserver] = ()) -> None:
        self._app = app
        self._is_served = is_served
        self._observers = tuple(observers)
        self._route_template = _RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = client_id = None
        for key, value in scope["headers"]:
            if key == REQUEST_ID_HEADER:
                request_id = value if _TOKEN.fullmatch(value) else None
            elif key == CLIENT_ID_HEADER:
                client_id = value if _TOKEN.fullmatch(value) else None
        request_id = request_id or os.urandom(16).hex().encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()  # for error logs
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (REQUEST_ID_HEADER, request_id)]}
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            route = self._route_template(scope)
            resource_type = _resource_type(scope)
            if resource_type is not None and not self._is_served(resource_type):
                resource_type = None  # whatever a client typed there stays out of the logs
            elif resource_type is not None and route is not None:
                route = route.replace("{resource_type}", resource_type)
            verified = getattr(scope.get("state", {}).get("principal"), "client_id", None)
            record = RequestRecord(
                request_id=request_id.decode(), method=scope["method"],
                route=route, resource_type=resource_type,
                status=status, duration=time.perf_counter() - started,
                client_id=(verified if isinstance(verified, str) and _TOKEN.fullmatch(
                    verified.encode()) else client_id.decode() if client_id else None))
            if access_logger.isEnabledFor(logging.INFO):
                # makeRecord + handle: logger.info would walk the stack for a caller we never show
                access_logger.handle(access_logger.makeRecord(
                    ACCESS_LOGGER, logging.INFO, __file__, 0, access_line(record), (), None))
            for observe in self._observers:
                observe(record)


def access_line(record: RequestRecord) -> str:
    """The JSON line for one request (UTC time to the millisecond)."""
    now = time.time()
    return orjson.dumps({
        "time": f"{_second(int(now))}.{int(now % 1 * 1000):03d}Z",
        "request_id": record.request_id, "method": record.method, "route": record.route,
        "status": record.status, "duration_ms": round(record.duration * 1000, 2),
        "client_id": record.client_id,
    }).decode()


@functools.lru_cache(maxsize=4)
def _second(epoch_second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


class _RouteTemplates:
    """The route template of a routed scope, from the ``endpoint`` the router put in it (the
    FastAPI router sets no ``scope["route"]`` for plain routes); built on first use from the
    app's routes. When the router was handed a copy of the scope (the XML body conversion
    does that) or no route matched, match again as the router did."""

    def __init__(self) -> None:
        self._by_endpoint: dict[Any, str] | None = None

    def __call__(self, scope: Scope) -> str | None:
        routes = getattr(getattr(scope.get("app"), "router", None), "routes", ())
        if self._by_endpoint is None:
            self._by_endpoint = self._index(routes)
        endpoint = scope.get("endpoint")
        if endpoint is not None and endpoint in self._by_endpoint:
            return self._by_endpoint[endpoint]
        partial = None
        for route in routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return _path_of(route)
            if match is Match.PARTIAL and partial is None:
                partial = route
        return _path_of(partial)

    @staticmethod
    def _index(routes: Sequence[Any]) -> dict[Any, str]:
        paths: dict[Any, set[str]] = {}
        for route in routes:
            path = _path_of(route)
            if path is not None and getattr(route, "endpoint", None) is not None:
                paths.setdefault(route.endpoint, set()).add(path)
        # an endpoint serving two paths says nothing: those requests are matched again
        return {endpoint: next(iter(found)) for endpoint, found in paths.items()
                if len(found) == 1}


def _path_of(route: object) -> str | None:
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def _resource_type(scope: Scope) -> str | None:
    path: str = scope.get("path", "")
    if path.startswith("/fhir/"):
        first = path[6:].split("/", 1)[0]
        if first[:1].isupper():
            return first
    return None


def configure_access_log(level: str) -> None:
    """Production logging for the access lines: bare JSON on stdout (the other logs stay on
    stderr in their own format), at ``FHIR_LOG_LEVEL`` (``warning`` or above silences them).
    Idempotent, so each uvicorn worker process can call it."""
    access_logger.setLevel(level.upper())
    if not any(getattr(handler, "fhir_access", False) for handler in access_logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.fhir_access = True  # type: ignore[attr-defined]
        access_logger.addHandler(handler)
    access_logger.propagate = False
