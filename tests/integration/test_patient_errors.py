"""Patient errors as https://hl7.org/fhir/R4/http.html says: every refusal is an
OperationOutcome with the right status and issue code, names the element at fault where there
is one, and writes nothing (the type history total is unchanged)."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.factories import FHIR_JSON, issue_codes, issue_expressions, patient

PATIENTS = "/fhir/Patient"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"


def _history_total(client: TestClient) -> int:
    response = client.get(f"{PATIENTS}/_history")
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def _refused(response: Response, status: int, code: str) -> dict[str, Any]:
    """The OperationOutcome of a refusal with ``status`` whose issues include ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    assert code in issue_codes(body), body
    return body


def _is_client_error_outcome(response: Response) -> None:
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.json()["resourceType"] == "OperationOutcome"


def _post(client: TestClient, resource: Any) -> Response:
    return client.post(PATIENTS, content=json.dumps(resource).encode(), headers=FHIR_JSON)


def _incompressible(length: int) -> str:
    rng = random.Random(length)
    return "".join(rng.choice(string.ascii_letters) for _ in range(length))


@pytest.fixture
def existing(client: TestClient) -> dict[str, Any]:
    """One stored Patient (so the history total before each refused write is 1)."""
    response = client.post(PATIENTS, json=patient(), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return dict(response.json())


# ------------------------------------------------------------------------- body syntax


def test_malformed_json_is_400_structure(client: TestClient, existing: dict) -> None:
    response = client.post(PATIENTS, content=b'{"resourceType": "Patient", "gender":',
                           headers=FHIR_JSON)
    _refused(response, 400, "structure")
    assert _history_total(client) == 1


def test_empty_body_is_400(client: TestClient, existing: dict) -> None:
    response = client.post(PATIENTS, content=b"", headers=FHIR_JSON)
    _refused(response, 400, "invalid")
    assert _history_total(client) == 1


def test_json_array_body_is_400(client: TestClient, existing: dict) -> None:
    response = client.post(PATIENTS, content=json.dumps([patient()]).encode(), headers=FHIR_JSON)
    _refused(response, 400, "invalid")
    assert _history_total(client) == 1


def test_body_with_utf8_bom_is_created(client: TestClient) -> None:
    body = b"\xef\xbb\xbf" + json.dumps(patient()).encode()
    response = client.post(PATIENTS, content=body, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == patient()["name"]


def test_resource_type_mismatch_is_400_naming_resource_type(
    client: TestClient, existing: dict
) -> None:
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"}}
    body = _refused(_post(client, observation), 400, "invalid")
    assert "resourceType" in issue_expressions(body)
    assert _history_total(client) == 1


def test_missing_resource_type_is_400(client: TestClient, existing: dict) -> None:
    resource = patient()
    del resource["resourceType"]
    body = _refused(_post(client, resource), 400, "required")
    assert "resourceType" in issue_expressions(body)
    assert _history_total(client) == 1


# ------------------------------------------------------------------ element validation


def test_invalid_birth_date_is_400_naming_birth_date(client: TestClient, existing: dict) -> None:
    body = _refused(_post(client, patient(birthDate="yesterday")), 400, "value")
    assert "Patient.birthDate" in issue_expressions(body)
    assert _history_total(client) == 1


@pytest.mark.parametrize(
    ("element", "value", "code"),
    [
        ("active", "yes", "value"),
        ("active", 1, "value"),
        ("multipleBirthInteger", "3", "value"),
        ("multipleBirthInteger", 2.5, "value"),
        ("gender", "robot", "code-invalid"),
        ("gender", True, "value"),
        ("birthDate", 19840309, "value"),
    ],
)
def test_wrong_json_type_is_400_naming_element(
    client: TestClient, existing: dict, element: str, value: Any, code: str
) -> None:
    body = _refused(_post(client, patient(**{element: value})), 400, code)
    assert f"Patient.{element}" in issue_expressions(body)
    assert _history_total(client) == 1


def test_object_where_array_expected_is_400_naming_element(
    client: TestClient, existing: dict
) -> None:
    body = _refused(_post(client, patient(name={"family": "Rivera"})), 400, "structure")
    assert "Patient.name" in issue_expressions(body)
    assert _history_total(client) == 1


def test_unknown_element_is_400_naming_it(client: TestClient, existing: dict) -> None:
    body = _refused(_post(client, patient(name1=[{"family": "Rivera"}])), 400, "structure")
    assert "Patient.name1" in issue_expressions(body)
    assert _history_total(client) == 1


def test_unknown_nested_element_is_400_naming_it(client: TestClient, existing: dict) -> None:
    resource = patient(name=[{"family": "Rivera", "surname": "Rivera"}])
    body = _refused(_post(client, resource), 400, "structure")
    assert "Patient.name[0].surname" in issue_expressions(body)
    assert _history_total(client) == 1


@pytest.mark.parametrize(
    ("overrides", "expression"),
    [
        ({"gender": None}, "Patient.gender"),
        ({"birthDate": None}, "Patient.birthDate"),
        ({"name": [{"family": None}]}, "Patient.name[0].family"),
        ({"name": [None]}, "Patient.name[0]"),
        ({"name": [{"family": "Rivera", "given": [None]}]}, "Patient.name[0].given[0]"),
    ],
    ids=["gender", "birthDate", "family", "name-item", "given-item-without-extension"],
)
def test_null_value_is_400_naming_element(
    client: TestClient, existing: dict, overrides: dict, expression: str
) -> None:
    body = _refused(_post(client, patient(**overrides)), 400, "value")
    assert expression in issue_expressions(body)
    assert _history_total(client) == 1


@pytest.mark.parametrize(
    ("overrides", "expression"),
    [
        ({"gender": ""}, "Patient.gender"),
        ({"name": [{"family": ""}]}, "Patient.name[0].family"),
        ({"name": [{"family": "Rivera", "given": [""]}]}, "Patient.name[0].given[0]"),
        ({"address": [{"line": ["   "]}]}, "Patient.address[0].line[0]"),
        ({"photo": [{"url": ""}]}, "Patient.photo[0].url"),
        ({"extension": [{"url": "http://example.org/x", "valueUrl": ""}]},
         "Patient.extension[0].valueUrl"),
    ],
    ids=["gender", "family", "given", "blank-line", "attachment-url", "extension-valueUrl"],
)
def test_empty_string_is_400_naming_element(
    client: TestClient, existing: dict, overrides: dict, expression: str
) -> None:
    body = _refused(_post(client, patient(**overrides)), 400, "value")
    assert expression in issue_expressions(body)
    assert _history_total(client) == 1


@pytest.mark.parametrize(
    ("overrides", "expression"),
    [
        ({"name": []}, "Patient.name"),
        ({"telecom": []}, "Patient.telecom"),
        ({"name": [{"family": "Rivera", "given": []}]}, "Patient.name[0].given"),
        ({"name": [{}]}, "Patient.name[0]"),
    ],
    ids=["name", "telecom", "given", "empty-object"],
)
def test_empty_array_or_object_is_400_naming_element(
    client: TestClient, existing: dict, overrides: dict, expression: str
) -> None:
    body = _refused(_post(client, patient(**overrides)), 400, "structure")
    assert expression in issue_expressions(body)
    assert _history_total(client) == 1


@pytest.mark.parametrize(
    ("overrides", "expression"),
    [
        ({"photo": [{"url": 123}]}, "Patient.photo[0].url"),
        ({"extension": [{"url": "http://example.org/x", "valueUrl": True}]},
         "Patient.extension[0].valueUrl"),
    ],
    ids=["attachment-url", "extension-valueUrl"],
)
def test_non_string_url_is_400_naming_element(
    client: TestClient, existing: dict, overrides: dict, expression: str
) -> None:
    body = _refused(_post(client, patient(**overrides)), 400, "value")
    assert expression in issue_expressions(body)
    assert _history_total(client) == 1


@pytest.mark.parametrize(("element", "value"), [("_birthDate", "0"), ("_gender", "1")])
def test_primitive_extension_given_as_json_text_is_400_naming_it(
    client: TestClient, existing: dict, element: str, value: str
) -> None:
    response = _post(client, patient(**{element: value}))
    body = _refused(response, 400, "value")
    assert f"Patient.{element}" in issue_expressions(body)
    assert _history_total(client) == 1


def test_contained_resource_of_unknown_type_is_400(client: TestClient, existing: dict) -> None:
    response = _post(client, patient(contained=[{"resourceType": "Foo", "id": "f1"}]))
    assert response.status_code == 400, response.text
    assert any(expr.startswith("Patient.contained[0]")
               for expr in issue_expressions(response.json()))
    assert _history_total(client) == 1


def test_contained_resource_without_resource_type_is_400(
    client: TestClient, existing: dict
) -> None:
    response = _post(client, patient(contained=[{"id": "o1", "name": "Acme"}]))
    assert response.status_code == 400, response.text
    assert any(expr.startswith("Patient.contained[0]")
               for expr in issue_expressions(response.json()))
    assert _history_total(client) == 1


def test_nul_character_in_string_is_400_naming_element(
    client: TestClient, existing: dict
) -> None:
    body = _refused(_post(client, patient(name=[{"family": "Riv\u0000era"}])), 400, "value")
    assert "Patient.name[0].family" in issue_expressions(body)
    assert _history_total(client) == 1


def test_deeply_nested_extensions_are_400(client: TestClient, existing: dict) -> None:
    depth = 200
    nested: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "leaf"}
    for _ in range(depth):
        nested = {"url": "http://example.org/branch", "extension": [nested]}
    response = _post(client, patient(extension=[nested]))
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert _history_total(client) == 1


# ------------------------------------------------------------------------- PRM rules


@pytest.mark.parametrize("value", ["1234-56-789", "123-45-678", "12345678", "SSN123456789"])
def test_malformed_ssn_is_400_naming_identifier_value(
    client: TestClient, existing: dict, value: str
) -> None:
    resource = patient(identifier=[{"system": "http://hospital.example.org/ids", "value": "A"},
                                   {"system": SSN_SYSTEM, "value": value}])
    body = _refused(_post(client, resource), 400, "value")
    assert "Patient.identifier[1].value" in issue_expressions(body)
    assert _history_total(client) == 1


def test_malformed_ssn_is_not_echoed_in_the_outcome(client: TestClient) -> None:
    resource = patient(identifier=[{"system": SSN_SYSTEM, "value": "1234-56-789"}])
    response = _post(client, resource)
    assert response.status_code == 400
    assert "1234-56-789" not in response.text
    assert "123456789" not in response.text


def test_ssn_as_bare_digits_is_returned_dashed(client: TestClient) -> None:
    response = _post(client, patient(identifier=[{"system": SSN_SYSTEM, "value": "123456789"}]))
    assert response.status_code == 201, response.text
    read = client.get(f"{PATIENTS}/{response.json()['id']}").json()
    assert read["identifier"][0] == {"system": SSN_SYSTEM, "value": "123-45-6789"}


def test_phone_without_digits_is_400_naming_telecom_value(
    client: TestClient, existing: dict
) -> None:
    resource = patient(telecom=[{"system": "email", "value": "ana.rivera@example.org"},
                                {"system": "phone", "value": "abc"}])
    body = _refused(_post(client, resource), 400, "value")
    assert "Patient.telecom[1].value" in issue_expressions(body)
    assert _history_total(client) == 1


def test_australian_phone_is_accepted_and_kept_as_sent(client: TestClient) -> None:
    resource = patient(telecom=[{"system": "phone", "value": "(03) 5555 6473", "use": "home"}])
    response = _post(client, resource)
    assert response.status_code == 201, response.text
    read = client.get(f"{PATIENTS}/{response.json()['id']}").json()
    assert read["telecom"] == [{"system": "phone", "value": "(03) 5555 6473", "use": "home"}]


def test_invalid_email_is_400_naming_telecom_value(client: TestClient, existing: dict) -> None:
    resource = patient(telecom=[{"system": "email", "value": "ana.rivera.example.org"}])
    body = _refused(_post(client, resource), 400, "value")
    assert "Patient.telecom[0].value" in issue_expressions(body)
    assert _history_total(client) == 1


def test_future_birth_date_is_400_naming_birth_date(client: TestClient, existing: dict) -> None:
    future = (date.today() + timedelta(days=30)).isoformat()
    body = _refused(_post(client, patient(birthDate=future)), 400, "value")
    assert "Patient.birthDate" in issue_expressions(body)
    assert _history_total(client) == 1


# ---------------------------------------------------------------------- size limits


def test_body_over_limit_is_413(client: TestClient, existing: dict) -> None:
    resource = patient(name=[{"family": "x" * 10_000_000}])
    _refused(_post(client, resource), 413, "too-long")
    assert _history_total(client) == 1


def test_streamed_body_over_limit_is_413(client: TestClient, existing: dict) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"resourceType": "Patient", "name": [{"family": "'
        for _ in range(3):
            yield b"x" * 512 * 1024
        yield b'"}]}'

    response = client.post(PATIENTS, content=chunks(), headers=FHIR_JSON)
    _refused(response, 413, "too-long")
    assert _history_total(client) == 1


def test_long_family_name_under_limit_is_not_a_server_error(client: TestClient) -> None:
    family = _incompressible(900_000)
    response = _post(client, patient(name=[{"family": family}]))
    assert response.status_code in (201, 400), response.text[:500]
    if response.status_code == 201:
        read = client.get(f"{PATIENTS}/{response.json()['id']}")
        assert read.json()["name"][0]["family"] == family
    else:
        assert "Patient.name[0].family" in issue_expressions(response.json())


def test_long_identifier_value_is_not_a_server_error(client: TestClient) -> None:
    value = _incompressible(5_000)
    resource = patient(identifier=[{"system": "http://hospital.example.org/ids",
                                    "value": value}])
    response = _post(client, resource)
    assert response.status_code in (201, 400), response.text[:500]
    if response.status_code == 201:
        read = client.get(f"{PATIENTS}/{response.json()['id']}")
        assert read.json()["identifier"][0]["value"] == value
    else:
        assert "Patient.identifier[0].value" in issue_expressions(response.json())


# ----------------------------------------------------------------------- update rules


def test_update_with_mismatched_id_writes_nothing(client: TestClient, existing: dict) -> None:
    response = client.put(f"{PATIENTS}/{existing['id']}", json=existing | {"id": "other"},
                          headers=FHIR_JSON)
    body = _refused(response, 400, "invalid")
    assert "Patient.id" in issue_expressions(body)
    assert _history_total(client) == 1
    assert client.get(f"{PATIENTS}/{existing['id']}").json()["meta"]["versionId"] == "1"


def test_garbage_if_match_is_400(client: TestClient, existing: dict) -> None:
    response = client.put(f"{PATIENTS}/{existing['id']}", json=existing,
                          headers=FHIR_JSON | {"If-Match": "garbage"})
    body = _refused(response, 400, "invalid")
    assert "If-Match" in body["issue"][0]["diagnostics"]
    assert _history_total(client) == 1


# ---------------------------------------------------------------------------- ids


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_id_with_slash_is_4xx_outcome(client: TestClient, existing: dict, method: str) -> None:
    response = client.request(method, f"{PATIENTS}/a/b",
                              content=json.dumps(patient(id="a")).encode(), headers=FHIR_JSON)
    _is_client_error_outcome(response)
    assert _history_total(client) == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_id_over_64_characters_is_400(client: TestClient, existing: dict, method: str) -> None:
    long_id = "a" * 65
    response = client.request(method, f"{PATIENTS}/{long_id}",
                              content=json.dumps(patient(id=long_id)).encode(),
                              headers=FHIR_JSON)
    _refused(response, 400, "invalid")
    assert _history_total(client) == 1


def test_id_with_invalid_characters_is_400(client: TestClient) -> None:
    _refused(client.get(f"{PATIENTS}/a%20b"), 400, "invalid")


# ------------------------------------------------------------------ types and routes


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/fhir/Foo/1"), ("POST", "/fhir/Foo"), ("GET", "/fhir/Observation/1")],
)
def test_unknown_resource_type_is_404(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, content=json.dumps(patient()).encode(),
                              headers=FHIR_JSON)
    _refused(response, 404, "not-found")


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", f"{PATIENTS}/123"), ("DELETE", "/fhir/metadata"),
     ("POST", f"{PATIENTS}/_history")],
)
def test_method_not_allowed_is_405_outcome(
    client: TestClient, existing: dict, method: str, path: str
) -> None:
    response = client.request(method, path, content=json.dumps(patient()).encode(),
                              headers=FHIR_JSON)
    _refused(response, 405, "not-supported")
    assert _history_total(client) == 1


def test_method_not_allowed_lists_every_method_the_url_allows(
    client: TestClient, existing: dict
) -> None:
    response = client.post(f"{PATIENTS}/{existing['id']}", json=patient(), headers=FHIR_JSON)
    assert response.status_code == 405
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "PUT", "PATCH", "DELETE"} <= allowed
    assert "POST" not in allowed


def test_deleted_patient_read_is_410(client: TestClient, existing: dict) -> None:
    client.delete(f"{PATIENTS}/{existing['id']}")
    _refused(client.get(f"{PATIENTS}/{existing['id']}"), 410, "deleted")


def test_vread_of_non_numeric_version_is_404(client: TestClient, existing: dict) -> None:
    _refused(client.get(f"{PATIENTS}/{existing['id']}/_history/abc"), 404, "not-found")


@pytest.mark.parametrize(
    "parameter",
    ["_count=abc", "_count=-1", "_count=1.5", "_count=%C2%B2", "_offset=x", "_since=soon"],
    ids=["count-word", "count-negative", "count-decimal", "count-superscript", "offset-word",
         "since-word"],
)
def test_bad_history_parameter_is_400(client: TestClient, parameter: str) -> None:
    _refused(client.get(f"{PATIENTS}/_history?{parameter}"), 400, "invalid")


@pytest.mark.parametrize(
    "parameter",
    ["_offset=99999999999999999999", "_count=99999999999999999999",
     "_since=0001-01-01T00:00:00%2B14:00", "_since=9999-12-31T23:59:59-14:00"],
    ids=["offset-huge", "count-huge", "since-before-year-1-utc", "since-after-year-9999-utc"],
)
def test_extreme_history_parameter_is_not_a_server_error(
    client: TestClient, existing: dict, parameter: str
) -> None:
    response = client.get(f"{PATIENTS}/_history?{parameter}")
    assert response.status_code in (200, 400), response.text
    expected = "Bundle" if response.status_code == 200 else "OperationOutcome"
    assert response.json()["resourceType"] == expected


def test_vread_of_version_beyond_any_integer_is_404(client: TestClient, existing: dict) -> None:
    response = client.get(f"{PATIENTS}/{existing['id']}/_history/99999999999999999999")
    _refused(response, 404, "not-found")


@pytest.mark.parametrize("criterion", ["family=Riv%00era", "email=a%00@example.org",
                                       "identifier=http://x|A%00"])
def test_conditional_create_with_nul_in_criterion_is_not_a_server_error(
    client: TestClient, existing: dict, criterion: str
) -> None:
    response = client.post(PATIENTS, json=patient(),
                           headers=FHIR_JSON | {"If-None-Exist": criterion})
    assert response.status_code in (201, 400), response.text
    if response.status_code == 400:
        assert response.json()["resourceType"] == "OperationOutcome"


# ---------------------------------------------------------------- content negotiation


@pytest.mark.parametrize("content_type", ["text/plain", "application/pdf"])
def test_unsupported_content_type_is_415(
    client: TestClient, existing: dict, content_type: str
) -> None:
    response = client.post(PATIENTS, content=json.dumps(patient()).encode(),
                           headers={"Content-Type": content_type})
    _refused(response, 415, "not-supported")
    assert _history_total(client) == 1


def test_unsupported_content_type_on_update_is_415(client: TestClient, existing: dict) -> None:
    response = client.put(f"{PATIENTS}/{existing['id']}", content=json.dumps(existing).encode(),
                          headers={"Content-Type": "text/plain"})
    _refused(response, 415, "not-supported")
    assert _history_total(client) == 1


def test_json_sent_as_xml_is_400_naming_xml(client: TestClient, existing: dict) -> None:
    response = client.put(f"{PATIENTS}/{existing['id']}", content=json.dumps(existing).encode(),
                          headers={"Content-Type": "application/fhir+xml"})
    _refused(response, 400, "invalid")
    assert "XML" in response.json()["issue"][0]["diagnostics"]
    assert _history_total(client) == 1


@pytest.mark.parametrize("accept", ["text/html", "application/fhir+turtle"])
def test_unacceptable_accept_is_406(client: TestClient, existing: dict, accept: str) -> None:
    response = client.get(f"{PATIENTS}/{existing['id']}", headers={"Accept": accept})
    _refused(response, 406, "not-supported")


def test_unacceptable_accept_on_create_is_406_and_writes_nothing(
    client: TestClient, existing: dict
) -> None:
    response = client.post(PATIENTS, json=patient(),
                           headers={"Content-Type": "application/fhir+json",
                                    "Accept": "text/html"})
    _refused(response, 406, "not-supported")
    assert _history_total(client) == 1


def test_format_turtle_is_406(client: TestClient, existing: dict) -> None:
    _refused(client.get(f"{PATIENTS}/{existing['id']}?_format=ttl"), 406, "not-supported")


def test_accept_any_is_200_json(client: TestClient, existing: dict) -> None:
    response = client.get(f"{PATIENTS}/{existing['id']}", headers={"Accept": "*/*"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
