"""FHIR resources turned into what a console page shows: names, identifiers (SSNs masked: the
console never shows one whole), contact points, addresses, documents, messages and the elements
a version changed. Pure functions over resource dicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from terminology import systems

SSN_TYPE_CODES = frozenset({"SS", "SB"})
MASK = "•••-••-"
TEXT_LIMIT = 140


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def official_name(resource: dict[str, Any]) -> dict[str, Any]:
    names = [name for name in _list(resource.get("name")) if isinstance(name, dict)]
    for wanted in ("official", "usual", None):
        for name in names:
            if wanted is None or name.get("use") == wanted:
                return name
    return {}


def family_of(resource: dict[str, Any]) -> str:
    return _text(official_name(resource).get("family"))


def given_of(resource: dict[str, Any]) -> str:
    return " ".join(_text(given) for given in _list(official_name(resource).get("given")))


def display_name(resource: dict[str, Any]) -> str:
    """``Family, Given Middle`` (the registration desk's order), else the name text."""
    name = official_name(resource)
    family, given = family_of(resource), given_of(resource)
    if family or given:
        return ", ".join(part for part in (family, given) if part)
    return _text(name.get("text")) or "(no name)"


def is_ssn(identifier: dict[str, Any]) -> bool:
    codes = {coding.get("code") for coding in _list((identifier.get("type") or {}).get("coding"))
             if isinstance(coding, dict)}
    return identifier.get("system") == systems.SSN or bool(codes & SSN_TYPE_CODES)


def masked_ssn(value: str) -> str:
    digits = [character for character in value if character.isdigit()]
    return MASK + "".join(digits[-4:]) if len(digits) >= 4 else MASK + "••••"


@dataclass(frozen=True)
class IdentifierView:
    label: str
    value: str
    use: str
    system: str


def identifiers(resource: dict[str, Any], mrn_system: str) -> list[IdentifierView]:
    found: list[IdentifierView] = []
    for identifier in _list(resource.get("identifier")):
        if not isinstance(identifier, dict):
            continue
        system = _text(identifier.get("system"))
        value = _text(identifier.get("value"))
        if is_ssn(identifier):
            label, value = "SSN", masked_ssn(value)
        elif system == mrn_system:
            label = "MRN"
        else:
            label = _text((identifier.get("type") or {}).get("text")) or system or "Identifier"
        found.append(IdentifierView(label, value, _text(identifier.get("use")), system))
    return found


def other_identifiers(resource: dict[str, Any], mrn_system: str) -> list[str]:
    """Identifiers other than SSN and the PRM's own MRN, as ``system|value``."""
    return [f"{view.system}|{view.value}" if view.system else view.value
            for view in identifiers(resource, mrn_system) if view.label not in ("SSN", "MRN")]


def ssns(resource: dict[str, Any]) -> list[str]:
    return [masked_ssn(_text(identifier.get("value")))
            for identifier in _list(resource.get("identifier"))
            if isinstance(identifier, dict) and is_ssn(identifier)]


def mrn(resource: dict[str, Any], mrn_system: str) -> str:
    return next((view.value for view in identifiers(resource, mrn_system)
                 if view.label == "MRN" and view.use != "old"), "")


def telecoms(resource: dict[str, Any], system: str) -> list[str]:
    return [_text(telecom.get("value")) + (f" ({telecom['use']})" if telecom.get("use") else "")
            for telecom in _list(resource.get("telecom"))
            if isinstance(telecom, dict) and telecom.get("system") == system
            and telecom.get("value")]


def address_text(address: dict[str, Any]) -> str:
    if address.get("text") and not address.get("line"):
        return _text(address["text"])
    lines = [_text(line) for line in _list(address.get("line"))]
    place = " ".join(part for part in (_text(address.get("city")), _text(address.get("state")),
                                       _text(address.get("postalCode"))) if part)
    return ", ".join(part for part in (*lines, place, _text(address.get("country"))) if part)


def addresses(resource: dict[str, Any]) -> list[str]:
    return [address_text(address) for address in _list(resource.get("address"))
            if isinstance(address, dict)]


def language(resource: dict[str, Any]) -> str:
    for entry in _list(resource.get("communication")):
        concept = entry.get("language") if isinstance(entry, dict) else None
        if isinstance(concept, dict):
            return _text(concept.get("text")) or next(
                (_text(c.get("display") or c.get("code")) for c in _list(concept.get("coding"))
                 if isinstance(c, dict)), "")
    return ""


def link_targets(resource: dict[str, Any], link_type: str) -> list[str]:
    """Ids of the patients this one links to with ``link_type`` (replaced-by, replaces)."""
    found: list[str] = []
    for link in _list(resource.get("link")):
        reference = _text(((link or {}).get("other") or {}).get("reference"))
        if link.get("type") == link_type and reference.startswith("Patient/"):
            found.append(reference.split("/", 1)[1])
    return found


def shorten(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def concept_text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    return _text(concept.get("text")) or next(
        (_text(coding.get("display") or coding.get("code")) for coding in
         _list(concept.get("coding")) if isinstance(coding, dict)), "")


@dataclass(frozen=True)
class DocumentView:
    id: str
    date: str
    title: str
    kind: str
    content_type: str
    size: int | None
    status: str
    downloadable: bool


def document(resource: dict[str, Any]) -> DocumentView:
    attachment = next((content.get("attachment") or {} for content in
                       _list(resource.get("content")) if isinstance(content, dict)), {})
    size = attachment.get("size")
    categories = [concept_text(c) for c in _list(resource.get("category"))]
    return DocumentView(
        id=_text(resource.get("id")),
        date=_text(resource.get("date"))[:10],
        title=shorten(_text(resource.get("description")) or _text(attachment.get("title"))
                      or "(untitled)", 80),
        kind=concept_text(resource.get("type")) or ", ".join(c for c in categories if c),
        content_type=_text(attachment.get("contentType")),
        size=size if isinstance(size, int) else None,
        status=_text(resource.get("status")),
        downloadable=bool(attachment.get("url")),
    )


@dataclass(frozen=True)
class MessageView:
    id: str
    when: str
    channel: str
    status: str
    text: str


def _payload(resource: dict[str, Any]) -> str:
    for payload in _list(resource.get("payload")):
        if isinstance(payload, dict) and isinstance(payload.get("contentString"), str):
            return shorten(payload["contentString"])
    return ""


def _channel(resource: dict[str, Any]) -> str:
    return ", ".join(concept_text(medium) for medium in _list(resource.get("medium")))


def sent_message(resource: dict[str, Any]) -> MessageView:
    return MessageView(_text(resource.get("id")), _when(_text(resource.get("sent"))),
                       _channel(resource), _text(resource.get("status")), _payload(resource))


def scheduled_message(resource: dict[str, Any]) -> MessageView:
    when = _text(resource.get("occurrenceDateTime")) or _text(
        (resource.get("occurrencePeriod") or {}).get("start"))
    return MessageView(_text(resource.get("id")), _when(when), _channel(resource),
                       _text(resource.get("status")), _payload(resource))


def _when(value: str) -> str:
    """``2024-05-02 09:00`` from a FHIR dateTime (UTC as stored)."""
    return value[:16].replace("T", " ") if value else ""


def changed_elements(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """Top-level elements that differ between two versions (meta aside)."""
    if before is None or after is None:
        return []
    keys = (set(before) | set(after)) - {"meta", "id", "resourceType"}
    return sorted(key for key in keys if before.get(key) != after.get(key))
