"""``CodeSystem/$lookup`` (https://hl7.org/fhir/R4/codesystem-operation-lookup.html): what a
code of a bundled code system is, as a Parameters with ``name``, ``version``, ``display``,
each ``designation`` and the ``property`` values (``definition``, ``parent``, ``child``,
``inactive`` and the concept's own; all of them unless ``property`` names some). For systems
not bundled whole (language tags, LOINC document classes, v3 NullFlavor) the codes bundled
value sets list are known, with their displays and designations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.errors import InvalidRequest, NotFound
from fhir_server.operations.operation_input import OperationInput
from terminology.code_systems import Concept, code_system

NAME = "$lookup"
PARAMETERS = ("code", "system", "version", "coding", "date", "displayLanguage", "property")


@dataclass(frozen=True)
class LookupRequest:
    system: str
    code: str
    version: str | None
    properties: tuple[str, ...]
    language: str | None


def parse_lookup(inputs: OperationInput) -> LookupRequest:
    code, system, coding = inputs.text("code"), inputs.text("system"), inputs.complex(
        "coding", "Coding")
    if coding is not None:
        if code is not None or system is not None:
            raise InvalidRequest("$lookup takes either code and system or a coding, not both")
        code, system = coding.get("code"), coding.get("system")
        if not isinstance(code, str) or not isinstance(system, str):
            raise InvalidRequest("$lookup: the coding needs a system and a code")
    if code is None or system is None:
        raise InvalidRequest("$lookup needs a code and its system (or a coding)")
    return LookupRequest(system=system, code=code, version=inputs.text("version"),
                         properties=tuple(inputs.texts("property")),
                         language=inputs.text("displayLanguage"))


def _value(prop: dict[str, Any]) -> tuple[str, Any] | None:
    return next(((key, value) for key, value in prop.items() if key.startswith("value")), None)


def _property(code: str, key: str, value: Any) -> dict[str, Any]:
    return {"name": "property", "part": [{"name": "code", "valueCode": code},
                                          {"name": "value", key: value}]}


def _properties(concept: Concept, wanted: tuple[str, ...]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if concept.definition:
        found.append(_property("definition", "valueString", concept.definition))
    found += [_property("parent", "valueCode", code) for code in concept.parents]
    found += [_property("child", "valueCode", code) for code in concept.children]
    if concept.inactive:
        found.append(_property("inactive", "valueBoolean", True))
    for prop in concept.properties:
        value = _value(prop)
        if value is not None and isinstance(prop.get("code"), str):
            found.append(_property(prop["code"], *value))
    if wanted:
        found = [item for item in found if item["part"][0]["valueCode"] in wanted]
    return found


def lookup(wanted: LookupRequest) -> dict[str, Any]:
    canonical = wanted.system + (f"|{wanted.version}" if wanted.version else "")
    index = code_system(canonical)
    if index is None:
        raise NotFound(f"The code system {canonical[:200]} is not bundled with this server; "
                       "GET [base]/CodeSystem lists those that are")
    concept = index.find(wanted.code)
    if concept is None:
        raise NotFound(f"The code '{wanted.code[:80]}' is not in the code system "
                       f"{canonical[:200]}" + ("" if index.complete else
                                              " (only the codes bundled value sets list are "
                                              "known for it)"))
    display = concept.display or concept.code
    if wanted.language:
        display = next((str(item["value"]) for item in concept.designations
                        if str(item.get("language", "")).lower() == wanted.language.lower()
                        and item.get("value")), display)
    parameters: list[dict[str, Any]] = [{"name": "name", "valueString": index.name}]
    if index.version:
        parameters.append({"name": "version", "valueString": index.version})
    parameters.append({"name": "display", "valueString": display})
    for designation in concept.designations:
        part: list[dict[str, Any]] = []
        if designation.get("language"):
            part.append({"name": "language", "valueCode": designation["language"]})
        if isinstance(designation.get("use"), dict):
            part.append({"name": "use", "valueCoding": designation["use"]})
        part.append({"name": "value", "valueString": str(designation.get("value", ""))})
        parameters.append({"name": "designation", "part": part})
    parameters += _properties(concept, wanted.properties)
    return {"resourceType": "Parameters", "parameter": parameters}
