"""Parse and validate a resource body: JSON syntax, resourceType, R4 structure, strict JSON."""

from __future__ import annotations

from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_server.errors import InvalidRequest, InvalidResource, Issue
from fhir_server.validation.json_depth import check_depth, too_deep
from fhir_server.validation.strict_json import TooDeep, check_resource

MAX_ID_LENGTH = 64


def parse_json(body: bytes) -> Any:
    """The JSON value in ``body``, nested no deeper than ``FHIR_MAX_JSON_DEPTH``; a UTF-8
    byte-order mark is tolerated."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    if not body.strip():
        raise InvalidRequest("The request body is empty; a FHIR resource was expected")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise too_deep() from None
        raise InvalidRequest(f"The request body is not valid JSON: {exc}",
                             issues=[Issue(f"The request body is not valid JSON: {exc}",
                                           code="structure")]) from exc
    check_depth(value)
    return value


def validate_resource(data: Any, expected_type: str) -> dict[str, Any]:
    """``data`` if it is a valid ``expected_type``; InvalidResource naming each element at fault."""
    if not isinstance(data, dict):
        raise InvalidResource(f"The body must be a JSON object holding a {expected_type} resource")
    resource_type = data.get("resourceType")
    if resource_type is None:
        raise InvalidResource("The resource has no resourceType",
                              issues=[Issue("The resource has no resourceType", code="required",
                                            expression=("resourceType",))])
    if resource_type != expected_type:
        raise InvalidResource(
            f"resourceType '{resource_type}' does not match the endpoint's type '{expected_type}'",
            issues=[Issue(f"resourceType '{resource_type}' does not match the endpoint's type "
                          f"'{expected_type}'", code="invalid", expression=("resourceType",))],
        )
    try:
        issues = check_resource(data)
    except TooDeep as exc:
        raise InvalidResource(str(exc), issues=[Issue(str(exc), code="structure")]) from None
    resource_id = data.get("id")
    if isinstance(resource_id, str) and len(resource_id) > MAX_ID_LENGTH:
        issues.append(Issue(f"{expected_type}.id is longer than {MAX_ID_LENGTH} characters",
                            code="value", expression=(f"{expected_type}.id",)))
    model = get_fhir_model_class(expected_type)
    try:
        model.model_validate(data)
    except ValidationError as exc:
        issues.extend(_issue_from_pydantic(error, expected_type) for error in exc.errors())
    except Exception as exc:  # noqa: BLE001 - the model library fails on some invalid input
        if not issues:
            issues.append(Issue(f"{expected_type} is not a valid resource: "
                                f"{type(exc).__name__} {str(exc)[:200]}", code="structure"))
    if issues:
        raise InvalidResource(issues[0].diagnostics, issues=_dedupe(issues))
    return data


def _issue_from_pydantic(error: Any, resource_type: str) -> Issue:
    path = resource_type
    for part in error.get("loc", ()):
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("resource_type", "__root__"):
            continue
        else:
            path += f".{part}"
    if error.get("type") == "extra_forbidden":
        return Issue(f"Unknown element {path}", code="structure", expression=(path,))
    if error.get("type") == "missing":
        return Issue(f"{path} is required", code="required", expression=(path,))
    message = str(error.get("msg", "invalid value")).replace("Value error, ", "")
    return Issue(f"{path}: {message}", code="value", expression=(path,))


def _dedupe(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[str, ...]] = set()
    unique: list[Issue] = []
    for issue in issues:
        key = issue.expression or (issue.diagnostics,)
        if key in seen:
            continue
        seen.add(key)
        unique.append(issue)
    return unique
