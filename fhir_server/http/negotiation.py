"""Content negotiation (https://hl7.org/fhir/R4/http.html#mime-type): JSON is served;
``Accept``/``_format`` asking only for something else is 406, a body in another type is 415."""

from __future__ import annotations

from fhir_server.errors import NotAcceptable, UnsupportedMediaType

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
JSON_TYPES = frozenset({FHIR_JSON, "application/json", "text/json", "json"})
ACCEPT_ANY = frozenset({"*/*", "application/*"})
FORMAT_ALIASES = {"json": FHIR_JSON, "application/fhir+json": FHIR_JSON,
                  "application/json": FHIR_JSON, "text/json": FHIR_JSON}


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
    """The media type of the response; NotAcceptable when only unsupported ones are asked for."""
    if format_parameter:
        wanted = FORMAT_ALIASES.get(format_parameter.strip().lower().replace(" ", "+"))
        if wanted is None:
            raise NotAcceptable(
                f"_format={format_parameter} is not supported; this server answers in "
                f"{FHIR_JSON} (_format=json)"
            )
        return wanted
    if not accept:
        return FHIR_JSON
    for media_type, quality in _media_types(accept):
        if quality > 0 and (media_type in JSON_TYPES or media_type in ACCEPT_ANY):
            return FHIR_JSON
    raise NotAcceptable(
        f"Accept: {accept[:200]} asks for no format this server produces; use {FHIR_JSON}"
    )


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
