"""Remembers which route serves a path and method, so a request skips the router's scan.

Starlette tries each route's regular expression in order until one matches fully. The
server has about a hundred routes and the generic ``/fhir/{resource_type}`` search route
comes after seventy more specific ones (they must win), so every search paid some seventy
failed matches (50-120 µs of CPU here) before its handler ran. For plain routes and
mounts the first full match depends only on the path, the root path and the method, so
the answer is remembered per (path, root path, method) and the remembered route is asked
once more to build its scope: the route and scope Starlette would have chosen.
Anything not a full match (405, redirects, 404) goes through the router as before."""

from __future__ import annotations

from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_REMEMBERED = 4096
"""Paths remembered before the memory starts afresh: searches use a few paths, reads
one per id, so a bounded map keeps the hot ones without growing with the database."""


class RouteIndex:
    """The router's entry point with a (path, method) -> route memory in front."""

    def __init__(self, router: Router, scan: ASGIApp) -> None:
        self.router = router
        self.scan = scan
        self.remembered: dict[tuple[str, str, str], BaseRoute] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.scan(scope, receive, send)
            return
        key = (scope["path"], scope.get("root_path", ""), scope["method"])
        route = self.remembered.get(key)
        if route is None:
            route = self._first_full_match(scope)
            if route is None:
                await self.scan(scope, receive, send)
                return
            if len(self.remembered) >= MAX_REMEMBERED:
                self.remembered.clear()
            self.remembered[key] = route
        match, child_scope = route.matches(scope)
        if match is not Match.FULL:  # cannot happen for plain routes; stay correct anyway
            await self.scan(scope, receive, send)
            return
        scope.setdefault("router", self.router)
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)

    def _first_full_match(self, scope: Scope) -> BaseRoute | None:
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route
        return None


def index_routes(router: Router) -> bool:
    """Put a RouteIndex in front of ``router`` when every route is a plain route or a mount
    (their match depends on path and method only) and the router has no middleware of its
    own; True when installed. Call after every route has been added."""
    if not all(isinstance(route, Route) or type(route) is Mount for route in router.routes):
        return False
    if router.middleware_stack != router.app:
        return False
    router.middleware_stack = RouteIndex(router, router.app)
    return True
