"""Content negotiation (https://hl7.org/fhir/R4/http.html#mime-type): FHIR JSON and FHIR XML
are served (handlers build JSON; ``fhir_server.http.xml_format`` turns it into XML when that
was asked for); ``Accept``/``_format`` asking only for something else is 406, a body in
another type is 415 (XML bodies reach the handlers as JSON)."""

from __future__ import annotations

from fhir_server.errors import NotAcceptable, UnsupportedMediaType

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
JSON_TYPES = frozenset({FHIR_JSON, "application/json", "text/json", "json"})
ACCEPT_ANY = frozenset({"*/*", "application/*"})
FHIR_XML = "application/fhir+xml"
XML_TYPES = frozenset({FHIR_XML, "application/xml", "text/xml", "xml"})
FORMAT_ALIASES = {"json": FHIR_JSON, "application/fhir+json": FHIR_JSON,
                  "application/json": FHIR_JSON, "text/json": FHIR_JSON,
                  "xml": FHIR_XML, "application/fhir+xml": FHIR_XML,
                  "application/xml": FHIR_XML, "text/xml": FHIR_XML}


def _media_types(header: str) -> list[tuple[str, float]]:
    types: list[tuple[str, float]] = []
    for part in header.split(","):
        pieces = [piece.strip() for piece in part.split(";")]
        media_type = pieces[0].lower()
        if not media_type:
            continue
        quality = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        types.append((media_type, quality))
    return types


def response_format(accept: str | None, format_parameter: str | None) -> str:
    """The media type of the response (FHIR JSON or FHIR XML): ``_format`` first, else the
    acceptable type of highest quality (JSON on a tie and for ``*/*``); NotAcceptable when only
    unsupported ones are asked for."""
    if format_parameter:
        wanted = FORMAT_ALIASES.get(format_parameter.strip().lower().replace(" ", "+"))
        if wanted is None:
            raise NotAcceptable(
                f"_format={format_parameter} is not supported; this server answers in "
                f"{FHIR_JSON} (_format=json) or {FHIR_XML} (_format=xml)"
            )
        return wanted
    if not accept:
        return FHIR_JSON
    best: tuple[float, str] | None = None
    for media_type, quality in _media_types(accept):
        if quality <= 0:
            continue
        if media_type in JSON_TYPES or media_type in ACCEPT_ANY:
            candidate = (quality, FHIR_JSON)
        elif media_type in XML_TYPES:
            candidate = (quality, FHIR_XML)
        else:
            continue
        if best is None or candidate[0] > best[0]:
            best = candidate
    if best is None:
        raise NotAcceptable(
            f"Accept: {accept[:200]} asks for no format this server produces; use "
            f"{FHIR_JSON} or {FHIR_XML}"
        )
    return best[1]


def check_body_type(content_type: str | None, *, allowed: frozenset[str] = JSON_TYPES) -> None:
    """UnsupportedMediaType unless the body is in an allowed type (a missing type means JSON)."""
    if content_type is None or not content_type.strip():
        return
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {media_type} is not supported here; send "
            f"{' or '.join(sorted(allowed - {'json', 'text/json'}))}"
        )
