"""``ValueSet/$validate-code`` and ``CodeSystem/$validate-code`` over the bundled content
(https://hl7.org/fhir/R4/valueset-operation-validate-code.html,
https://hl7.org/fhir/R4/codesystem-operation-validate-code.html): is this code (``code`` and
``system``, a ``coding``, or any coding of a ``codeableConcept``) in the value set or code
system? The answer is a Parameters with ``result``, a ``message`` saying why not (or, when the
code is valid but the display given is not one of its displays, that warning) and the code's
``display``. Abstract codes are valid only with ``abstract=true``; MIME types and language tags
of value sets that take those systems whole are checked by syntax."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.errors import InvalidRequest, NotFound
from fhir_server.operations.expand import find_value_set, not_expandable
from fhir_server.operations.operation_input import OperationInput
from terminology.code_systems import Concept, code_system
from terminology.content import catalog
from terminology.expansion import Entry, NotExpandable, contains

VALUE_SET_PARAMETERS = ("url", "valueSet", "valueSetVersion", "code", "system",
                        "systemVersion", "display", "coding", "codeableConcept", "abstract",
                        "displayLanguage", "context", "date")
CODE_SYSTEM_PARAMETERS = ("url", "codeSystem", "version", "code", "display", "coding",
                          "codeableConcept", "abstract", "displayLanguage", "date")


@dataclass(frozen=True)
class Candidate:
    system: str | None
    code: str
    display: str | None


@dataclass(frozen=True)
class ValidateCodeRequest:
    url: str | None
    version: str | None
    inline: dict[str, Any] | None
    candidates: tuple[Candidate, ...]
    abstract: bool


def _candidates(inputs: OperationInput, *, default_system: str | None) -> list[Candidate]:
    code, coding = inputs.text("code"), inputs.complex("coding", "Coding")
    concept = inputs.complex("codeableConcept", "CodeableConcept")
    given = [value for value in (code, coding, concept) if value is not None]
    if len(given) != 1:
        raise InvalidRequest(f"{inputs.operation} needs exactly one of code, coding and "
                             "codeableConcept")
    if code is not None:
        system = inputs.text("system") if "system" in inputs.values else None
        return [Candidate(system or default_system, code, inputs.text("display"))]
    codings = [coding] if coding is not None else list((concept or {}).get("coding") or [])
    found = [Candidate(item.get("system") or default_system, item["code"], item.get("display"))
             for item in codings if isinstance(item, dict) and isinstance(item.get("code"), str)]
    if not found:
        raise InvalidRequest(f"{inputs.operation}: the {'coding' if coding else 'codeableConcept'}"
                             " holds no code")
    return found


def parse_value_set_request(inputs: OperationInput) -> ValidateCodeRequest:
    return ValidateCodeRequest(
        url=inputs.text("url"), version=inputs.text("valueSetVersion"),
        inline=inputs.resource("valueSet", "ValueSet"),
        candidates=tuple(_candidates(inputs, default_system=None)),
        abstract=inputs.boolean("abstract") or False)


def parse_code_system_request(inputs: OperationInput, *,
                              resource_id: str | None) -> ValidateCodeRequest:
    url, inline = inputs.text("url"), inputs.resource("codeSystem", "CodeSystem")
    if resource_id is not None:
        resource = catalog().by_id("CodeSystem", resource_id)
        if resource is None:
            raise NotFound(f"CodeSystem/{resource_id} is not bundled with this server")
        url = url or resource["url"]
    if inline is not None:
        raise InvalidRequest("$validate-code checks codes against bundled code systems; "
                             "a codeSystem in the body is not supported")
    if url is None:
        raise InvalidRequest("$validate-code needs the code system's url (or its id in the "
                             "path)")
    return ValidateCodeRequest(
        url=url, version=inputs.text("version"), inline=None,
        candidates=tuple(_candidates(inputs, default_system=url)),
        abstract=inputs.boolean("abstract") or False)


def _displays(concept: Concept | Entry) -> list[str]:
    values = [concept.display] if concept.display else []
    values += [str(item["value"]) for item in concept.designations if item.get("value")]
    return values


def _verdict(candidate: Candidate, found: Concept | Entry | None, where: str,
             abstract_allowed: bool) -> dict[str, Any]:
    shown = f"'{candidate.code[:80]}'" + (f" (system {candidate.system[:200]})"
                                          if candidate.system else "")
    if found is None:
        return {"result": False, "message": f"The code {shown} is not in {where}"}
    if found.abstract and not abstract_allowed:
        return {"result": False, "display": found.display,
                "message": f"The code {shown} is abstract in {where}: not for use as a "
                           "concept (abstract=true allows it)"}
    answer: dict[str, Any] = {"result": True, "display": found.display}
    displays = _displays(found)
    if candidate.display and displays and candidate.display.strip().casefold() not in {
            value.strip().casefold() for value in displays}:
        answer["message"] = (f"The display '{candidate.display[:120]}' is not a display of "
                             f"the code {shown}; it is '{found.display}'")
    return answer


def _parameters(verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    chosen = next((verdict for verdict in verdicts if verdict["result"]), verdicts[0])
    parameters: list[dict[str, Any]] = [{"name": "result", "valueBoolean": chosen["result"]}]
    messages = [verdict["message"] for verdict in ([chosen] if chosen["result"] else verdicts)
                if verdict.get("message")]
    if messages:
        parameters.append({"name": "message", "valueString": "; ".join(messages)})
    if chosen.get("display"):
        parameters.append({"name": "display", "valueString": chosen["display"]})
    return {"resourceType": "Parameters", "parameter": parameters}


def validate_in_value_set(wanted: ValidateCodeRequest, *,
                          resource_id: str | None) -> dict[str, Any]:
    resource = find_value_set(resource_id=resource_id, url=wanted.url, version=wanted.version,
                              inline=wanted.inline, operation="$validate-code")
    where = f"the value set {resource.get('url') or resource.get('id') or '(inline)'}"
    verdicts = []
    for candidate in wanted.candidates:
        try:
            found = contains(resource, system=candidate.system, code=candidate.code)
        except NotExpandable as reason:
            raise not_expandable(resource, reason) from None
        verdicts.append(_verdict(candidate, found, where, wanted.abstract))
    return _parameters(verdicts)


def validate_in_code_system(wanted: ValidateCodeRequest) -> dict[str, Any]:
    assert wanted.url is not None
    canonical = wanted.url + (f"|{wanted.version}" if wanted.version else "")
    index = code_system(canonical)
    if index is None or not index.complete:
        raise NotFound(f"The CodeSystem {canonical[:200]} is not bundled with this server; "
                       "GET [base]/CodeSystem lists those that are")
    where = f"the code system {canonical}"
    verdicts = [_verdict(candidate,
                         index.find(candidate.code) if candidate.system == wanted.url else None,
                         where, wanted.abstract)
                for candidate in wanted.candidates]
    return _parameters(verdicts)
