"""The terminology operations without HTTP: inputs from a query or a Parameters body, and the
answers of $expand, $validate-code and $lookup."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fhir_server.errors import InvalidRequest, NotFound, UnprocessableEntity
from fhir_server.operations.expand import PARAMETERS, expand_value_set, parse_expand
from fhir_server.operations.lookup import PARAMETERS as LOOKUP_PARAMETERS
from fhir_server.operations.lookup import lookup, parse_lookup
from fhir_server.operations.operation_input import operation_input
from fhir_server.operations.validate_code import (
    VALUE_SET_PARAMETERS,
    parse_value_set_request,
    validate_in_value_set,
)

GENDER = "http://hl7.org/fhir/ValueSet/administrative-gender"
AT = datetime(2024, 5, 1, tzinfo=UTC)


def _expand(query: list[tuple[str, str]], body: Any = None,
            resource_id: str | None = None) -> dict[str, Any]:
    inputs = operation_input("$expand", query=query, body=body, accepted=PARAMETERS)
    return expand_value_set(parse_expand(inputs), resource_id=resource_id, at=AT)


def test_query_and_body_inputs_are_merged() -> None:
    body = {"resourceType": "Parameters", "parameter": [{"name": "count", "valueInteger": 1}]}
    answer = _expand([("url", GENDER)], body)
    assert [item["code"] for item in answer["expansion"]["contains"]] == ["male"]
    assert answer["expansion"]["timestamp"] == "2024-05-01T00:00:00.000Z"


@pytest.mark.parametrize(("query", "body"), [
    ([("url", GENDER), ("url", GENDER)], None),
    ([("colour", "red")], None),
    ([("url", GENDER)], {"resourceType": "Bundle"}),
    ([], {"resourceType": "Parameters", "parameter": [{"name": "url", "valueInteger": 3}]}),
    ([], {"resourceType": "Parameters", "parameter": "url"}),
    ([("url", GENDER), ("offset", "-2")], None),
])
def test_bad_inputs_are_refused(query: list[tuple[str, str]], body: Any) -> None:
    with pytest.raises(InvalidRequest):
        _expand(query, body)


def test_an_offset_past_the_end_gives_no_codes_and_the_total() -> None:
    expansion = _expand([("url", GENDER), ("offset", "10")])["expansion"]
    assert expansion["total"] == 4 and "contains" not in expansion


def test_url_and_instance_id_together_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="exactly one"):
        _expand([("url", GENDER)], resource_id="administrative-gender")


def test_unknown_and_unexpandable_value_sets() -> None:
    with pytest.raises(NotFound):
        _expand([("url", GENDER), ("valueSetVersion", "3.0.2")])
    with pytest.raises(UnprocessableEntity):
        _expand([("url", "http://hl7.org/fhir/ValueSet/all-languages")])


def _validate(query: list[tuple[str, str]]) -> dict[str, Any]:
    inputs = operation_input("$validate-code", query=query, body=None,
                             accepted=VALUE_SET_PARAMETERS)
    return validate_in_value_set(parse_value_set_request(inputs), resource_id=None)


def test_validate_code_answers_result_and_display() -> None:
    assert _validate([("url", GENDER), ("code", "other")]) == {
        "resourceType": "Parameters", "parameter": [{"name": "result", "valueBoolean": True},
                                                    {"name": "display", "valueString": "Other"}]}


def test_validate_code_and_coding_together_are_refused() -> None:
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "code", "valueCode": "male"}, {"name": "coding", "valueCoding": {"code": "male"}}]}
    inputs = operation_input("$validate-code", query=[("url", GENDER)], body=body,
                             accepted=VALUE_SET_PARAMETERS)
    with pytest.raises(InvalidRequest, match="exactly one"):
        parse_value_set_request(inputs)


def test_lookup_of_a_listed_code_without_a_bundled_system() -> None:
    inputs = operation_input("$lookup", query=[("system", "http://loinc.org"),
                                               ("code", "11488-4")], body=None,
                             accepted=LOOKUP_PARAMETERS)
    answer = lookup(parse_lookup(inputs))
    assert answer["parameter"][:2] == [{"name": "name", "valueString": "LOINC"},
                                       {"name": "display", "valueString": "Consult Note"}]
