"""HTTP face of messaging: Twilio's delivery status callbacks and inbound messages (each
checked against ``X-Twilio-Signature`` with the auth token; a bad or missing signature is
403), and ``Communication/$stats``."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from fhir_server.errors import Forbidden, InvalidRequest
from fhir_server.http import routes
from fhir_server.http.negotiation import response_format
from fhir_server.http.responses import json_response
from fhir_server.messaging.provider_events import apply_inbound, apply_status
from fhir_server.messaging.setup import INBOUND_PATH, STATUS_CALLBACK_PATH
from fhir_server.messaging.statistics import message_statistics
from fhir_server.security.access import run_operation
from mappings.fhir_dates import DateValueError, date_range
from storage.stored import now

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def _signed_form(request: Request) -> dict[str, str]:
    """The posted form, if Twilio signed it with our auth token; Forbidden otherwise."""
    settings = routes.services_of(request).settings
    if not settings.twilio_auth_token:
        raise Forbidden("Twilio callbacks are refused: TWILIO_AUTH_TOKEN is not configured")
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"),
                          keep_blank_values=True))
    root = (settings.base_url or "").rstrip("/").removesuffix("/fhir")
    url = (f"{root}{request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
           if root else str(request.url))
    signature = request.headers.get("x-twilio-signature", "")
    if not RequestValidator(settings.twilio_auth_token).validate(url, form, signature):
        raise Forbidden("X-Twilio-Signature does not match this request")
    return form


async def twilio_status(request: Request) -> Response:
    """POST /messaging/twilio/status?key=...: a message's delivery status."""
    form = await _signed_form(request)
    status = form.get("MessageStatus") or form.get("SmsStatus")
    if not status:
        raise InvalidRequest("MessageStatus is missing")
    await apply_status(routes.services_of(request).engine,
                       key=request.query_params.get("key"), provider_id=form.get("MessageSid"),
                       status=status, error_code=form.get("ErrorCode"), now=now())
    return Response(status_code=204)


async def twilio_inbound(request: Request) -> Response:
    """POST /messaging/twilio/inbound: a reply; STOP opts the sender out of the channel."""
    form = await _signed_form(request)
    await apply_inbound(routes.services_of(request).engine, sender=form.get("From", ""),
                        body=form.get("Body", ""), now=now())
    return Response(EMPTY_TWIML, media_type="text/xml")


async def communication_stats(request: Request) -> Response:
    """GET /fhir/Communication/$stats?start=&end=: messaging statistics (Parameters)."""
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    bounds = []
    for name, high in (("start", False), ("end", True)):
        value = request.query_params.get(name) or ""
        try:
            bounds.append(date_range(value)[1 if high else 0] if value else None)
        except DateValueError:
            raise InvalidRequest(f"{name}: '{value[:40]}' is not a FHIR date or dateTime") \
                from None
    return json_response(await run_operation(
        request, "Communication/$stats",
        lambda: message_statistics(routes.services_of(request).engine, start=bounds[0],
                                   end=bounds[1]),
        entities=lambda _: []))


def messaging_routes(prefix: str = "/fhir") -> list[Route]:
    return [
        Route(STATUS_CALLBACK_PATH, twilio_status, methods=["POST"]),
        Route(INBOUND_PATH, twilio_inbound, methods=["POST"]),
        Route(prefix + "/Communication/$stats", communication_stats, methods=["GET"]),
    ]
