"""Strict FHIR JSON rules that fhir.resources leaves unchecked.

fhir.resources (pydantic) coerces ``"active": "yes"`` to true and ``"3"`` to 3, accepts
``null``, empty strings, objects and arrays, and does not check required code bindings
(``gender: "robot"``). https://hl7.org/fhir/R4/json.html forbids all of these; this walker
checks them against the fields of the R4B models, with no I/O. Required bindings listed in
``bindings`` are checked against the bundled ValueSets (a refusal names it); the others
against the models' code lists.
"""

from __future__ import annotations

import dataclasses
import decimal
import re
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from fhir_server.errors import Issue
from fhir_server.validation.bindings import allowed_codes, binding_issue, required_value_set

_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
MAX_DEPTH = 64


@dataclass(frozen=True)
class FieldRule:
    """What JSON a field accepts: ``kind`` is bool, int, decimal, str, model or resource."""

    kind: str
    is_list: bool
    model: str | None = None
    codes: frozenset[str] | None = None
    value_set: str | None = None
    """The required binding's ValueSet, checked against the bundled terminology."""


def _unwrap_optional(annotation: Any) -> Any:
    while typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        annotation = args[0]
    return annotation


def _rule_for(annotation: Any, codes: frozenset[str] | None) -> FieldRule:
    annotation = _unwrap_optional(annotation)
    is_list = typing.get_origin(annotation) in (list, typing.List)  # noqa: UP006
    if is_list:
        annotation = _unwrap_optional(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    # url-like types are Union[AnyUrl, str]: JSON strings all the same
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    if union and str in typing.get_args(annotation):
        return FieldRule("str", is_list, codes=codes)
    if annotation is bool:
        return FieldRule("bool", is_list)
    if annotation is int:
        return FieldRule("int", is_list)
    if annotation in (float, decimal.Decimal):
        return FieldRule("decimal", is_list)
    if annotation in (str, date, datetime, time, bytes):
        return FieldRule("str", is_list, codes=codes)
    name = getattr(annotation, "__name__", "")
    if name == "ResourceType":
        return FieldRule("resource", is_list)
    if name.endswith("Type"):
        return FieldRule("model", is_list, model=name[: -len("Type")])
    return FieldRule("any", is_list)


@cache
def field_rules(model_name: str) -> dict[str, FieldRule]:
    """JSON key -> rule, for one R4B model class."""
    model = get_fhir_model_class(model_name)
    rules: dict[str, FieldRule] = {}
    for field in model.model_fields.values():
        alias = field.alias
        if not alias or alias == "fhir_comments":
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        enum_values = extra.get("enum_values")
        # a "+" in the list marks an abbreviated value set in the model metadata: not checkable
        checkable = isinstance(enum_values, list) and "+" not in enum_values
        codes = frozenset(str(code) for code in enum_values) if checkable else None  # type: ignore[union-attr]
        rules[alias] = _rule_for(field.annotation, codes)
        bound = required_value_set(model_name, alias)
        if bound is not None:
            rules[alias] = dataclasses.replace(rules[alias], codes=allowed_codes(bound),
                                               value_set=bound)
    return rules


def check_resource(resource: dict[str, Any]) -> list[Issue]:
    """Issues for every strict-JSON rule ``resource`` breaks (empty when it keeps them all)."""
    issues: list[Issue] = []
    resource_type = str(resource.get("resourceType"))
    _check_object(resource, resource_type, resource_type, issues, top_level=True)
    return issues


class TooDeep(ValueError):
    """The resource nests deeper than MAX_DEPTH: refused before any recursive validation."""


def _check_object(
    data: dict[str, Any], model_name: str, path: str, issues: list[Issue], top_level: bool = False,
    depth: int = 1,
) -> None:
    if depth > MAX_DEPTH:
        raise TooDeep(f"The resource is nested more than {MAX_DEPTH} levels deep (at {path})")
    if not data:
        issues.append(Issue(f"{path} must not be an empty object", code="structure",
                            expression=(path,)))
        return
    rules = field_rules(model_name)
    for key, value in data.items():
        if top_level and key == "resourceType":
            continue
        rule = rules.get(key)
        if rule is None:
            continue  # unknown elements are reported by the model validation
        child = f"{path}.{key}"
        if rule.is_list:
            if not isinstance(value, list):
                issues.append(Issue(f"{child} must be a JSON array", code="structure",
                                    expression=(child,)))
                continue
            if not value:
                issues.append(Issue(f"{child} must not be an empty array", code="structure",
                                    expression=(child,)))
            for index, item in enumerate(value):
                if item is None and _null_is_aligned(data, key, index):
                    continue  # nulls align primitive arrays with their _element twins
                _check_value(item, rule, f"{child}[{index}]", issues, depth)
        else:
            _check_value(value, rule, child, issues, depth)


def _null_is_aligned(data: dict[str, Any], key: str, index: int) -> bool:
    """A null in ``key`` (or ``_key``) is allowed where its twin array has a value."""
    twin_key = key[1:] if key.startswith("_") else "_" + key
    twin = data.get(twin_key)
    return isinstance(twin, list) and index < len(twin) and twin[index] is not None


def _check_value(
    value: Any, rule: FieldRule, path: str, issues: list[Issue], depth: int
) -> None:
    def refuse(expected: str) -> None:
        issues.append(Issue(f"{path} must be {expected}, got {_json_kind(value)}",
                            code="value", expression=(path,)))

    if value is None:
        refuse("a value (null is not allowed)")
    elif rule.kind == "bool":
        if not isinstance(value, bool):
            refuse("a JSON boolean")
    elif rule.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            refuse("a JSON integer")
    elif rule.kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            refuse("a JSON number")
    elif rule.kind == "str":
        if not isinstance(value, str):
            refuse("a JSON string")
        elif value.strip() == "":
            refuse("a non-empty string")
        elif _CONTROL_CHARACTER.search(value):
            issues.append(Issue(f"{path} contains a control character (only tab, carriage "
                                "return and line feed are allowed)", code="value",
                                expression=(path,)))
        elif rule.value_set is not None:
            refusal = binding_issue(value, rule.value_set, path)
            if refusal is not None:
                issues.append(refusal)
        elif rule.codes is not None and value not in rule.codes:
            issues.append(Issue(
                f"{path} has code '{value[:64]}', which is not in the required value set "
                f"({', '.join(sorted(rule.codes))})",
                code="code-invalid", expression=(path,),
            ))
    elif rule.kind == "model":
        if not isinstance(value, dict):
            refuse("a JSON object")
        elif rule.model:
            _check_object(value, rule.model, path, issues, depth=depth + 1)
    elif rule.kind == "resource":
        if not isinstance(value, dict):
            refuse("a JSON object")
        elif isinstance(value.get("resourceType"), str):
            try:
                get_fhir_model_class(value["resourceType"])
            except (KeyError, ValueError):
                issues.append(Issue(f"{path} has unknown resourceType "
                                    f"'{value['resourceType'][:64]}'",
                                    code="structure", expression=(path,)))
                return
            _check_object(value, value["resourceType"], path, issues, top_level=True,
                          depth=depth + 1)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
