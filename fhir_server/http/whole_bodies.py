"""An ASGI ``send`` that holds back the answers of some content types until their whole body
has arrived, then hands the start message and the body to a caller that rewrites them (FHIR
JSON as XML, indented JSON); every other answer passes through as it comes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import Message, Send


def whole_bodies(send: Send, *, takes: Callable[[str], bool],
                 finish: Callable[[Message, bytes], Awaitable[None]]) -> Send:
    """``send`` where answers whose Content-Type ``takes`` are given whole to ``finish``
    (which sends them itself); one wrapped ``send`` serves one request."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            content_type = next((value.decode("latin-1") for key, value in message["headers"]
                                 if key.lower() == b"content-type"), "")
            if takes(content_type):
                start = message
                return
            await send(message)
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        await finish(start, b"".join(chunks))

    return wrapped
