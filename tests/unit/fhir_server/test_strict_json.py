"""fhir_server.validation.strict_json: the FHIR JSON rules (https://hl7.org/fhir/R4/json.html)
that fhir.resources does not enforce, checked without I/O."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.validation.strict_json import FieldRule, check_resource, field_rules


def _patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **elements}


def _issues(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(code, expression) of every issue ``resource`` raises."""
    return [(issue.code or "", expr) for issue in check_resource(resource)
            for expr in issue.expression]


# -------------------------------------------------------------------------- field rules


@pytest.mark.parametrize(
    ("model", "key", "rule"),
    [
        ("Patient", "active", FieldRule("bool", False)),
        ("Patient", "multipleBirthInteger", FieldRule("int", False)),
        ("Patient", "birthDate", FieldRule("str", False)),
        ("Patient", "name", FieldRule("model", True, model="HumanName")),
        ("Patient", "contained", FieldRule("resource", True)),
        ("HumanName", "given", FieldRule("str", True)),
        ("Extension", "valueDecimal", FieldRule("decimal", False)),
    ],
)
def test_field_rule_follows_the_r4b_model(model: str, key: str, rule: FieldRule) -> None:
    assert field_rules(model)[key] == rule


def test_required_binding_lists_its_codes() -> None:
    assert field_rules("Patient")["gender"].codes == frozenset(
        {"male", "female", "other", "unknown"})


def test_field_rules_are_keyed_by_json_name() -> None:
    rules = field_rules("Patient")
    assert "_birthDate" in rules
    assert "birth_date" not in rules


# ------------------------------------------------------------------------ valid input


def test_valid_patient_has_no_issues() -> None:
    resource = _patient(
        active=True, gender="female", birthDate="1984-03-09", multipleBirthInteger=2,
        name=[{"family": "O'Brien", "given": ["Zoë"]}],
        telecom=[{"system": "phone", "value": "(617) 495-2000", "rank": 1}],
        extension=[{"url": "http://example.org/x", "valueDecimal": 1.5}],
    )
    assert check_resource(resource) == []


def test_null_aligned_with_primitive_extension_is_allowed() -> None:
    resource = _patient(name=[{
        "given": ["Ana", None],
        "_given": [None, {"extension": [{"url": "http://example.org/x", "valueString": "b"}]}],
    }])
    assert check_resource(resource) == []


def test_integer_is_accepted_as_decimal() -> None:
    assert check_resource(_patient(extension=[{"url": "http://x", "valueDecimal": 2}])) == []


def test_unknown_element_is_left_to_model_validation() -> None:
    assert check_resource(_patient(name1=[{"family": "Rivera"}])) == []


def test_contained_resource_of_unknown_type_does_not_raise() -> None:
    issues = check_resource(_patient(contained=[{"resourceType": "Foo", "gender": 1}]))
    assert all(expr.startswith("Patient.contained[0]")
               for issue in issues for expr in issue.expression)


# ---------------------------------------------------------------------- wrong JSON type


@pytest.mark.parametrize(
    ("elements", "expression"),
    [
        ({"active": "yes"}, "Patient.active"),
        ({"active": 1}, "Patient.active"),
        ({"multipleBirthInteger": "3"}, "Patient.multipleBirthInteger"),
        ({"multipleBirthInteger": True}, "Patient.multipleBirthInteger"),
        ({"multipleBirthInteger": 2.5}, "Patient.multipleBirthInteger"),
        ({"birthDate": 1984}, "Patient.birthDate"),
        ({"extension": [{"url": "http://x", "valueDecimal": "1.5"}]},
         "Patient.extension[0].valueDecimal"),
        ({"extension": [{"url": "http://x", "valueDecimal": False}]},
         "Patient.extension[0].valueDecimal"),
        ({"name": [{"given": [1]}]}, "Patient.name[0].given[0]"),
        ({"maritalStatus": "married"}, "Patient.maritalStatus"),
        ({"contained": ["Organization"]}, "Patient.contained[0]"),
    ],
)
def test_wrong_json_type_is_a_value_issue(elements: dict, expression: str) -> None:
    assert _issues(_patient(**elements)) == [("value", expression)]


@pytest.mark.parametrize(
    ("elements", "expression"),
    [({"name": {"family": "Rivera"}}, "Patient.name"),
     ({"name": [{"given": "Ana"}]}, "Patient.name[0].given")],
)
def test_single_value_for_array_is_a_structure_issue(elements: dict, expression: str) -> None:
    assert _issues(_patient(**elements)) == [("structure", expression)]


def test_issue_diagnostics_say_what_was_expected_and_got() -> None:
    [issue] = check_resource(_patient(active="yes"))
    assert issue.diagnostics == "Patient.active must be a JSON boolean, got a string"


# ------------------------------------------------------------------ null, empty values


@pytest.mark.parametrize(
    ("elements", "expression"),
    [
        ({"gender": None}, "Patient.gender"),
        ({"name": [None]}, "Patient.name[0]"),
        ({"name": [{"family": None}]}, "Patient.name[0].family"),
        ({"meta": None}, "Patient.meta"),
    ],
)
def test_null_is_a_value_issue(elements: dict, expression: str) -> None:
    assert _issues(_patient(**elements)) == [("value", expression)]


def test_null_in_primitive_array_without_extension_is_an_issue() -> None:
    assert _issues(_patient(name=[{"given": [None]}])) == [("value", "Patient.name[0].given[0]")]


@pytest.mark.parametrize(
    ("elements", "expression"),
    [
        ({"gender": ""}, "Patient.gender"),
        ({"birthDate": "   "}, "Patient.birthDate"),
        ({"name": [{"family": ""}]}, "Patient.name[0].family"),
        ({"address": [{"line": ["\t"]}]}, "Patient.address[0].line[0]"),
    ],
)
def test_blank_string_is_a_value_issue(elements: dict, expression: str) -> None:
    assert _issues(_patient(**elements)) == [("value", expression)]


@pytest.mark.parametrize(
    ("elements", "expression"),
    [
        ({"name": []}, "Patient.name"),
        ({"name": [{"given": []}]}, "Patient.name[0].given"),
        ({"name": [{}]}, "Patient.name[0]"),
        ({"meta": {}}, "Patient.meta"),
        ({"maritalStatus": {"coding": [{}]}}, "Patient.maritalStatus.coding[0]"),
    ],
)
def test_empty_array_or_object_is_a_structure_issue(elements: dict, expression: str) -> None:
    assert _issues(_patient(**elements)) == [("structure", expression)]


def test_empty_resource_is_not_flagged_as_empty_object() -> None:
    assert check_resource({"resourceType": "Patient"}) == []


# ------------------------------------------------------------------------------ codes


@pytest.mark.parametrize(
    ("elements", "expression"),
    [
        ({"gender": "robot"}, "Patient.gender"),
        ({"gender": "Female"}, "Patient.gender"),
        ({"telecom": [{"system": "telepathy", "value": "x"}]}, "Patient.telecom[0].system"),
        ({"name": [{"use": "formal", "family": "R"}]}, "Patient.name[0].use"),
        ({"contact": [{"gender": "robot"}]}, "Patient.contact[0].gender"),
    ],
)
def test_code_outside_required_value_set_is_code_invalid(
    elements: dict, expression: str
) -> None:
    assert _issues(_patient(**elements)) == [("code-invalid", expression)]


def test_code_issue_lists_the_allowed_codes() -> None:
    [issue] = check_resource(_patient(gender="robot"))
    assert "female, male, other, unknown" in issue.diagnostics


def test_long_bad_code_is_truncated_in_diagnostics() -> None:
    [issue] = check_resource(_patient(gender="x" * 1000))
    assert len(issue.diagnostics) < 200


def test_unbound_code_is_not_checked() -> None:
    assert check_resource(_patient(language="tlh")) == []


# ---------------------------------------------------------------- nesting and collection


def test_contained_resource_is_checked_under_its_path() -> None:
    resource = _patient(contained=[{"resourceType": "Patient", "id": "c1", "active": "no"}])
    assert _issues(resource) == [("value", "Patient.contained[0].active")]


def test_deep_element_path_is_reported() -> None:
    resource = _patient(contact=[{"name": {"family": "R"}},
                                 {"telecom": [{"system": "phone", "rank": "1"}]}])
    assert _issues(resource) == [("value", "Patient.contact[1].telecom[0].rank")]


def test_every_issue_is_collected() -> None:
    resource = _patient(active="yes", gender="robot", name=[{"family": ""}])
    assert sorted(_issues(resource)) == [
        ("code-invalid", "Patient.gender"), ("value", "Patient.active"),
        ("value", "Patient.name[0].family")]
