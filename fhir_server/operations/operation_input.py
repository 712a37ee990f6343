"""The inputs of an operation invoked by GET (query parameters) or POST (a Parameters body,
query parameters allowed beside it), checked against the names it declares: 400 naming an
unknown or mistyped one. https://hl7.org/fhir/R4/operations.html#request"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fhir_server.errors import InvalidRequest

TEXT_TYPES = ("valueString", "valueUri", "valueCode", "valueCanonical", "valueUrl", "valueId",
              "valueMarkdown")
INTEGER_TYPES = ("valueInteger", "valueUnsignedInt", "valuePositiveInt")
PASSED_THROUGH = frozenset({"_format", "_pretty"})
"""Query parameters every operation accepts (answer format)."""


@dataclass(frozen=True)
class OperationInput:
    """Each named input's values: strings from the query, Parameters.parameter dicts from a
    body."""

    operation: str
    values: dict[str, list[Any]]

    def _single(self, name: str) -> Any:
        found = self.values.get(name, [])
        if len(found) > 1:
            raise InvalidRequest(f"{self.operation} takes one '{name}', got {len(found)}")
        return found[0] if found else None

    def _wrong(self, name: str, kind: str) -> InvalidRequest:
        return InvalidRequest(f"{self.operation} '{name}' must be {kind}")

    def text(self, name: str) -> str | None:
        value = self._single(name)
        if value is None or isinstance(value, str):
            return value
        found = [value[key] for key in TEXT_TYPES if key in value]
        if len(found) != 1 or not isinstance(found[0], str):
            raise self._wrong(name, "a string (valueString, valueUri, valueCode, ...)")
        return str(found[0])

    def texts(self, name: str) -> list[str]:
        return [OperationInput(self.operation, {name: [value]}).text(name) or ""
                for value in self.values.get(name, [])]

    def integer(self, name: str) -> int | None:
        value = self._single(name)
        if value is None:
            return None
        if isinstance(value, str):
            if not value.isdigit() or len(value) > 9:
                raise self._wrong(name, "a whole number of at least 0")
            return int(value)
        found = [value[key] for key in INTEGER_TYPES if key in value]
        if (len(found) != 1 or not isinstance(found[0], int) or isinstance(found[0], bool)
                or found[0] < 0):
            raise self._wrong(name, "a valueInteger of at least 0")
        return int(found[0])

    def boolean(self, name: str) -> bool | None:
        value = self._single(name)
        if value is None:
            return None
        if isinstance(value, str):
            if value not in ("true", "false"):
                raise self._wrong(name, "true or false")
            return value == "true"
        if not isinstance(value.get("valueBoolean"), bool):
            raise self._wrong(name, "a valueBoolean")
        return bool(value["valueBoolean"])

    def complex(self, name: str, kind: str) -> dict[str, Any] | None:
        """A ``valueCoding``/``valueCodeableConcept`` (``kind``), only in a body."""
        value = self._single(name)
        if value is None:
            return None
        found = value.get(f"value{kind}") if isinstance(value, dict) else None
        if not isinstance(found, dict):
            raise self._wrong(name, f"a value{kind} (in a Parameters body)")
        return found

    def resource(self, name: str, resource_type: str) -> dict[str, Any] | None:
        value = self._single(name)
        if value is None:
            return None
        found = value.get("resource") if isinstance(value, dict) else None
        if not isinstance(found, dict) or found.get("resourceType") != resource_type:
            raise self._wrong(name, f"a {resource_type} resource (in a Parameters body)")
        return found


def operation_input(operation: str, *, query: Iterable[tuple[str, str]], body: Any,
                    accepted: Iterable[str]) -> OperationInput:
    """``operation``'s inputs from the query and, for a POST, its Parameters ``body`` (None
    for a GET); InvalidRequest for a name not ``accepted`` or a body that is no Parameters."""
    names = frozenset(accepted)
    values: dict[str, list[Any]] = {}

    def add(name: Any, value: Any) -> None:
        if not isinstance(name, str) or name not in names:
            raise InvalidRequest(f"{operation} has no parameter '{str(name)[:40]}' "
                                 f"({', '.join(sorted(names))})")
        values.setdefault(name, []).append(value)

    for name, value in query:
        if name not in PASSED_THROUGH:
            add(name, value)
    if body is not None:
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise InvalidRequest(f"{operation} takes a Parameters resource")
        parameters = body.get("parameter") or []
        if not isinstance(parameters, list):
            raise InvalidRequest(f"{operation}: Parameters.parameter must be a list")
        for parameter in parameters:
            if not isinstance(parameter, dict):
                raise InvalidRequest(f"{operation}: each parameter must be an object")
            add(parameter.get("name"), parameter)
    return OperationInput(operation, values)
