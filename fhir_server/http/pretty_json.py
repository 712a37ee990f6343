"""``_pretty=true`` (https://hl7.org/fhir/R4/http.html#general): a FHIR JSON answer indented
for people reading it (two spaces, as the spec's examples). Only those answers are touched:
XML, raw Binary bytes and other types pass through as they are, and without the parameter
nothing is buffered."""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_server.http.whole_bodies import whole_bodies

_JSON_TYPES = ("application/fhir+json", "application/json")


def _wants_pretty(scope: Scope) -> bool:
    query = scope.get("query_string", b"")
    if b"_pretty" not in query:
        return False
    values = [value for key, value in parse_qsl(query.decode("latin-1")) if key == "_pretty"]
    return bool(values) and values[-1].strip().lower() == "true"


class PrettyJsonMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "HEAD" \
                or not scope.get("path", "").startswith("/fhir") or not _wants_pretty(scope):
            await self._app(scope, receive, send)
            return

        async def finish(start: Message, body: bytes) -> None:
            try:
                body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
            except orjson.JSONDecodeError:
                pass  # not JSON after all: sent as it came
            headers = MutableHeaders(raw=start["headers"])
            headers["content-length"] = str(len(body))
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self._app(scope, receive, whole_bodies(send, takes=_is_json, finish=finish))


def _is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in _JSON_TYPES
