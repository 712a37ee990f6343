"""Required bindings: the table names real R4 elements, its bundled value sets hold the same
codes as the R4 models, and refusals name element, code and value set."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_server.validation.bindings import MIME_TYPES, REQUIRED, allowed_codes, binding_issue
from fhir_server.validation.strict_json import check_resource


@pytest.mark.parametrize(("element", "canonical"), sorted(REQUIRED.items()))
def test_bundled_codes_equal_the_models_code_list(element: tuple[str, str],
                                                  canonical: str) -> None:
    model_name, alias = element
    fields = {info.alias: info for info in get_fhir_model_class(model_name).model_fields.values()}
    assert alias in fields, element
    if canonical == MIME_TYPES:
        assert allowed_codes(canonical) is None
        return
    extra = fields[alias].json_schema_extra
    assert isinstance(extra, dict)
    assert allowed_codes(canonical) == frozenset(extra["enum_values"])  # type: ignore[arg-type]


def test_a_refusal_names_the_element_the_code_and_the_value_set() -> None:
    issue = binding_issue("mail", "http://hl7.org/fhir/ValueSet/administrative-gender",
                          "Patient.gender")
    assert issue is not None
    assert issue.code == "code-invalid" and issue.expression == ("Patient.gender",)
    assert "'mail'" in issue.diagnostics
    assert "http://hl7.org/fhir/ValueSet/administrative-gender" in issue.diagnostics


def _paths(resource: dict[str, Any]) -> list[str]:
    return [issue.expression[0] for issue in check_resource(resource)
            if issue.code == "code-invalid"]


def test_datatype_bindings_are_checked_wherever_the_datatype_is() -> None:
    patient = {"resourceType": "Patient",
               "identifier": [{"use": "usual", "assigner": {"identifier": {"use": "nope"}}}],
               "extension": [{"url": "urn:x", "valueHumanName": {"use": "bad"}}],
               "photo": [{"contentType": "image jpeg"}]}
    assert _paths(patient) == ["Patient.identifier[0].assigner.identifier.use",
                               "Patient.extension[0].valueHumanName.use",
                               "Patient.photo[0].contentType"]


@pytest.mark.parametrize("content_type", ["application/pdf", "text/plain; charset=utf-8",
                                          "application/x-custom+json"])
def test_any_well_formed_mime_type_is_accepted(content_type: str) -> None:
    assert _paths({"resourceType": "Binary", "contentType": content_type}) == []


def test_preferred_bindings_are_not_enforced() -> None:
    patient = {"resourceType": "Patient", "language": "tlh",
               "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47",
                                                           "code": "tlh"}]}}],
               "maritalStatus": {"coding": [{"system": "http://example.org", "code": "x"}]}}
    assert _paths(patient) == []
