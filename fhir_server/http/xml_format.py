"""FHIR XML (https://hl7.org/fhir/R4/xml.html) on every FHIR endpoint, as a layer around the
JSON app: an XML request body is read into the R4 models and handed on as FHIR JSON; a FHIR
JSON response to a client that asked for XML (``_format`` or ``Accept``) is written out as
XML. Handlers, errors and operations stay JSON-only.

XML is parsed without DTDs, entity expansion or network access (a document with a DOCTYPE is
refused), so entity bombs and external entities cannot work; comments are dropped (R4 JSON has
no place for them). Raw Binary bytes pass untouched: only ``application/fhir+xml`` is a FHIR
body on ``/fhir/Binary``."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fhir.resources.R4B import get_fhir_model_class
from lxml import etree  # type: ignore[import-untyped]
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_server.errors import (
    FhirError,
    InvalidRequest,
    NotAcceptable,
    PayloadTooLarge,
    operation_outcome,
)
from fhir_server.http.negotiation import FHIR_JSON, FHIR_XML, XML_TYPES, response_format
from fhir_server.http.whole_bodies import whole_bodies

logger = logging.getLogger("fhir_server")

FHIR_NAMESPACE = "http://hl7.org/fhir"
XHTML_DIV = "{http://www.w3.org/1999/xhtml}div"
XML_UTF8 = f"{FHIR_XML}; charset=utf-8"


class UnreadableXml(InvalidRequest):
    """The body is not a FHIR resource in XML."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           remove_comments=True, huge_tree=False)


def xml_to_json(body: bytes) -> bytes:
    """A FHIR XML resource as FHIR JSON bytes; UnreadableXml says what is wrong."""
    try:
        root = etree.fromstring(body, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise UnreadableXml(f"The body is not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise UnreadableXml("XML with a DOCTYPE is not accepted (FHIR XML has no DTD)")
    name = etree.QName(root)
    if name.namespace != FHIR_NAMESPACE:
        raise UnreadableXml(f"The root element must be in the {FHIR_NAMESPACE} namespace")
    try:
        model = get_fhir_model_class(name.localname)
    except (KeyError, ValueError):
        raise UnreadableXml(f"<{name.localname}> is not a FHIR R4 resource type") from None
    for narrative in root.iter(XHTML_DIV):
        narrative.tail = None  # the models would keep the indentation after </div> in the div
    try:
        resource = model.model_validate_xml(etree.tostring(root), xmlparser=_parser())
    except (ValueError, TypeError, KeyError, AttributeError, etree.LxmlError) as exc:
        raise UnreadableXml(f"{name.localname} XML does not match the R4 model: "
                            f"{str(exc)[:600]}") from None
    return resource.model_dump_json(by_alias=True, exclude_none=True).encode()


def json_to_xml(body: bytes) -> bytes:
    """FHIR JSON bytes (a resource) as FHIR XML."""
    data: dict[str, Any] = orjson.loads(body)
    model = get_fhir_model_class(str(data.get("resourceType")))
    written: str | bytes = model.model_validate(data).model_dump_xml()
    return written if isinstance(written, bytes) else written.encode()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


class FhirXmlMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self._app = app
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/fhir"):
            await self._app(scope, receive, send)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        try:
            wants_xml = response_format(_header(scope, b"accept"),
                                        query.get("_format")) == FHIR_XML
        except NotAcceptable:
            wants_xml = False  # the app answers 406
        body_type = _media_type(_header(scope, b"content-type"))
        xml_body = body_type == FHIR_XML or (body_type in XML_TYPES
                                             and not path.startswith("/fhir/Binary"))
        if xml_body and scope["method"] in ("POST", "PUT"):
            try:
                scope, receive = await self._as_json_request(scope, receive)
            except FhirError as error:
                await _send_error(send, error, as_xml=wants_xml)
                return
        if wants_xml and scope["method"] != "HEAD":
            send = _xml_responses(send)
        await self._app(scope, receive, send)

    async def _as_json_request(self, scope: Scope, receive: Receive) -> tuple[Scope, Receive]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                raise PayloadTooLarge(f"The request body is larger than the limit of "
                                      f"{self._max_body_bytes} bytes (FHIR_MAX_BODY_BYTES)")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        converted = xml_to_json(b"".join(chunks))
        headers = [(key, value) for key, value in scope["headers"]
                   if key.lower() not in (b"content-type", b"content-length")]
        headers += [(b"content-type", FHIR_JSON.encode()),
                    (b"content-length", str(len(converted)).encode())]
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": converted, "more_body": False}

        return {**scope, "headers": headers}, replay


def _xml_responses(send: Send) -> Send:
    """``send`` turning FHIR JSON responses into XML (others pass as they are)."""

    async def finish(start: Message, body: bytes) -> None:
        try:
            converted = json_to_xml(body) if body else b""
        except Exception:  # a response the models reject: say so rather than fail
            logger.exception("a FHIR JSON response could not be written as XML")
            await _send_error(send, NotAcceptable(
                "This response cannot be written as FHIR XML; ask for application/fhir+json"),
                as_xml=False)
            return
        headers = [(key, value) for key, value in start["headers"]
                   if key.lower() not in (b"content-type", b"content-length")]
        headers += [(b"content-type", XML_UTF8.encode()),
                    (b"content-length", str(len(converted)).encode())]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": converted, "more_body": False})

    return whole_bodies(send, takes=lambda content_type: _media_type(content_type) == FHIR_JSON,
                        finish=finish)


async def _send_error(send: Send, error: FhirError, *, as_xml: bool) -> None:
    body = orjson.dumps(operation_outcome(error))
    content_type = "application/fhir+json; charset=utf-8"
    if as_xml:
        body, content_type = json_to_xml(body), XML_UTF8
    headers = [(b"content-type", content_type.encode()),
               (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
