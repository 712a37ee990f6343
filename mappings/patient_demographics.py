"""PRM demographic columns <-> Patient elements: US Core race and ethnicity extensions,
``communication.language`` (preferred language) and the first ``contact`` (emergency contact).

On write the columns are derived from the elements. On read the element stays as written
unless the columns no longer agree with it (the PRM changed the row), then it is rebuilt from
the columns, so the columns own these elements.
"""

from __future__ import annotations

from typing import Any

from mappings.contact_points import ContactPointError, phone_to_e164
from terminology import systems

RACE_URL = systems.US_CORE_RACE
ETHNICITY_URL = systems.US_CORE_ETHNICITY
CDC_RACE_ETHNICITY_SYSTEM = systems.CDC_RACE_ETHNICITY
LANGUAGE_SYSTEM = systems.BCP_47

RACE_COLUMNS = ("race_code", "race_display")
ETHNICITY_COLUMNS = ("ethnicity_code", "ethnicity_display")
LANGUAGE_COLUMNS = ("preferred_language",)
CONTACT_COLUMNS = (
    "emergency_contact_name", "emergency_contact_relationship", "emergency_contact_phone",
)


def derive_demographics(resource: dict[str, Any], phone_region: str) -> dict[str, Any]:
    """The demographic columns for ``resource``."""
    return (
        _category_columns(resource, RACE_URL, RACE_COLUMNS)
        | _category_columns(resource, ETHNICITY_URL, ETHNICITY_COLUMNS)
        | {"preferred_language": _preferred_language(resource)}
        | _contact_columns(resource, phone_region)
    )


_ELEMENTS = ("extension", "communication", "contact")
"""The Patient elements the demographic columns are derived from."""
_COLUMNS = (*RACE_COLUMNS, *ETHNICITY_COLUMNS, *LANGUAGE_COLUMNS, *CONTACT_COLUMNS)
_NONE_ONLY = frozenset({None})


def rebuild_demographics(resource: dict[str, Any], main: dict[str, Any], phone_region: str) -> None:
    """Rebuild, in place, each element whose columns in ``main`` no longer agree with it."""
    if resource.keys().isdisjoint(_ELEMENTS) and set(map(main.get, _COLUMNS)) == _NONE_ONLY:
        return  # nothing to derive and every column empty: they agree (checked per resource
        # of a search page, hence map and a set rather than generators)
    derived = derive_demographics(resource, phone_region)

    def disagrees(columns: tuple[str, ...]) -> bool:
        return any(derived[column] != main.get(column) for column in columns)

    if disagrees(RACE_COLUMNS):
        _replace_category(resource, RACE_URL, main["race_code"], main["race_display"])
    if disagrees(ETHNICITY_COLUMNS):
        _replace_category(resource, ETHNICITY_URL, main["ethnicity_code"],
                          main["ethnicity_display"])
    if disagrees(LANGUAGE_COLUMNS):
        _replace_language(resource, main["preferred_language"])
    if disagrees(CONTACT_COLUMNS):
        _replace_contact(resource, main)


def _category_extension(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((ext for ext in resource.get("extension") or () if ext.get("url") == url), None)


def _category_columns(
    resource: dict[str, Any], url: str, columns: tuple[str, ...]
) -> dict[str, Any]:
    extension = _category_extension(resource, url)
    code = display = None
    for part in (extension or {}).get("extension") or ():
        if part.get("url") == "ombCategory" and code is None:
            code = (part.get("valueCoding") or {}).get("code")
        elif part.get("url") == "text":
            display = part.get("valueString")
    return {columns[0]: code, columns[1]: display}


def _replace_category(
    resource: dict[str, Any], url: str, code: str | None, display: str | None
) -> None:
    others = [ext for ext in resource.get("extension") or () if ext.get("url") != url]
    parts: list[dict[str, Any]] = []
    if code:
        parts.append({"url": "ombCategory",
                      "valueCoding": {"system": CDC_RACE_ETHNICITY_SYSTEM, "code": code}})
    if display:
        parts.append({"url": "text", "valueString": display})
    extensions = others + ([{"extension": parts, "url": url}] if parts else [])
    if extensions:
        resource["extension"] = extensions
    else:
        resource.pop("extension", None)


def _preferred_language(resource: dict[str, Any]) -> str | None:
    entries = resource.get("communication") or []
    chosen = next((entry for entry in entries if entry.get("preferred") is True), None)
    chosen = chosen or (entries[0] if entries else None)
    if chosen is None:
        return None
    codings = (chosen.get("language") or {}).get("coding") or [{}]
    code = codings[0].get("code")
    return str(code) if code is not None else None


def _replace_language(resource: dict[str, Any], code: str | None) -> None:
    entries = [entry for entry in resource.get("communication") or ()
               if entry.get("preferred") is not True]
    if code:
        entries.insert(0, {"language": {"coding": [{"system": LANGUAGE_SYSTEM, "code": code}]},
                           "preferred": True})
    else:
        entries = []
    if entries:
        resource["communication"] = entries
    else:
        resource.pop("communication", None)


def _contact_columns(resource: dict[str, Any], phone_region: str) -> dict[str, Any]:
    contacts = resource.get("contact") or []
    if not contacts:
        return dict.fromkeys(CONTACT_COLUMNS)
    contact = contacts[0]
    name = contact.get("name") or {}
    name_text = name.get("text") or " ".join(
        part for part in [*(name.get("given") or []), name.get("family") or ""] if part
    ) or None
    relationship = None
    for concept in contact.get("relationship") or ():
        coding = (concept.get("coding") or [{}])[0]
        relationship = concept.get("text") or coding.get("code")
        if relationship:
            break
    phone = next((point.get("value") for point in contact.get("telecom") or ()
                  if point.get("system") in ("phone", "sms") and point.get("value")), None)
    if phone:
        try:
            phone = phone_to_e164(phone, phone_region) or phone
        except ContactPointError:
            pass
    return {
        "emergency_contact_name": name_text,
        "emergency_contact_relationship": relationship,
        "emergency_contact_phone": phone,
    }


def _replace_contact(resource: dict[str, Any], main: dict[str, Any]) -> None:
    others = list(resource.get("contact") or [])[1:]
    contact: dict[str, Any] = {}
    if main.get("emergency_contact_relationship"):
        contact["relationship"] = [{"text": main["emergency_contact_relationship"]}]
    if main.get("emergency_contact_name"):
        contact["name"] = {"text": main["emergency_contact_name"]}
    if main.get("emergency_contact_phone"):
        contact["telecom"] = [{"system": "phone", "value": main["emergency_contact_phone"]}]
    contacts = ([contact] if contact else []) + others
    if contacts:
        resource["contact"] = contacts
    else:
        resource.pop("contact", None)
