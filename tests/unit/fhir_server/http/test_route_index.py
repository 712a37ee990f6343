"""The route index picks the route Starlette's own scan picks, for the server's real routes."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

from fhir_server.app import create_app
from fhir_server.http.route_index import MAX_REMEMBERED, RouteIndex, index_routes
from fhir_server.settings import Settings

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
SEGMENTS = ["fhir", "Patient", "Binary", "DocumentReference", "Communication", "AuditEvent",
            "metadata", "_search", "_history", "$match", "$merge", "$export", "$everything",
            "$validate", "$stats", "$presign", "docs", "static", "console", "health", "ready",
            ".well-known", "smart-configuration", "123", "a-b.c", "1", ""]


def starlette_choice(router: Router, path: str, method: str) -> tuple[BaseRoute | None, Any]:
    """The route and scope Starlette's scan gives a full match (None: no full match)."""
    scope = _scope(path, method)
    for route in router.routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child
    return None, None


def _scope(path: str, method: str) -> Scope:
    return {"type": "http", "path": path, "method": method, "root_path": "", "headers": [],
            "query_string": b""}


class Recorder:
    """Stands for the router's scan: records that a request was handed back to it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])


def index_choice(index: RouteIndex, path: str, method: str) -> tuple[Any, Any]:
    """The route the index hands the request to, with its path parameters (None: scanned)."""
    handled: list[Scope] = []

    async def capture(scope: Scope, receive: Receive, send: Send) -> None:
        handled.append(scope)

    scope = _scope(path, method)
    original = {id(route): route.handle for route in index.router.routes}
    for route in index.router.routes:
        route.handle = capture  # type: ignore[method-assign]
    try:
        asyncio.run(index(scope, _never, _never))
    finally:
        for route in index.router.routes:
            route.handle = original[id(route)]  # type: ignore[method-assign]
    if not handled:
        return None, None
    return handled[0]["route"], handled[0].get("path_params")


async def _never(*_: Any) -> Any:
    raise AssertionError("the route index must not touch the connection itself")


def server_router() -> Router:
    app = create_app(Settings())
    return app.router


ROUTER = server_router()


def test_the_server_installs_the_index() -> None:
    assert isinstance(ROUTER.middleware_stack, RouteIndex)


def test_a_search_path_is_served_by_the_generic_search_route_from_memory() -> None:
    index = RouteIndex(ROUTER, Recorder())
    for _ in range(2):
        route, params = index_choice(index, "/fhir/Patient", "GET")
        assert getattr(route, "path", None) == "/fhir/{resource_type}"
        assert params == {"resource_type": "Patient"}
    assert ("/fhir/Patient", "", "GET") in index.remembered


def test_specific_routes_still_win_over_the_generic_ones() -> None:
    index = RouteIndex(ROUTER, Recorder())
    for path, method in [("/fhir/metadata", "GET"), ("/fhir/Patient/$match", "POST"),
                         ("/fhir/Patient/7/$everything", "GET"), ("/fhir/Patient/7", "GET"),
                         ("/fhir/Patient/7/_history/2", "GET"), ("/fhir/Binary", "POST")]:
        expected, child = starlette_choice(ROUTER, path, method)
        assert expected is not None, path
        for _ in range(2):
            assert index_choice(index, path, method) == (expected, child["path_params"])


def test_a_path_with_no_full_match_goes_through_the_scan_and_is_not_remembered() -> None:
    scan = Recorder()
    index = RouteIndex(ROUTER, scan)
    assert index_choice(index, "/fhir/Patient/7", "POST") == (None, None)  # a 405
    assert index_choice(index, "/nowhere/at/all", "GET") == (None, None)  # a 404
    assert scan.paths == ["/fhir/Patient/7", "/nowhere/at/all"]
    assert index.remembered == {}


def test_the_memory_starts_afresh_when_full() -> None:
    index = RouteIndex(ROUTER, Recorder())
    for number in range(MAX_REMEMBERED + 1):
        index_choice(index, f"/fhir/Patient/{number}", "GET")
    assert len(index.remembered) == 1
    assert ("/fhir/Patient/4096", "", "GET") in index.remembered


def test_a_router_with_routes_that_look_beyond_the_path_is_left_alone() -> None:
    class HeaderRoute(BaseRoute):
        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            return Match.NONE, {}

    router = Router(routes=[Route("/a", lambda request: None), HeaderRoute()])
    assert index_routes(router) is False
    assert router.middleware_stack == router.app


path_strategy = st.lists(st.sampled_from(SEGMENTS), min_size=0, max_size=6).map(
    lambda parts: "/" + "/".join(parts))


@settings(max_examples=200, deadline=None)
@given(requests=st.lists(st.tuples(path_strategy, st.sampled_from(METHODS)), min_size=1,
                         max_size=8))
def test_the_index_agrees_with_starlette_for_any_path_and_method(
        requests: list[tuple[str, str]]) -> None:
    index = RouteIndex(ROUTER, Recorder())
    for path, method in requests * 2:  # the second pass comes from memory
        expected, child = starlette_choice(ROUTER, path, method)
        chosen = index_choice(index, path, method)
        assert chosen == ((expected, child["path_params"]) if expected else (None, None))
