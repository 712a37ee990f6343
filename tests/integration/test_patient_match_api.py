"""``Patient/$match`` over HTTP (https://hl7.org/fhir/R4/patient-operation-match.html) on
SQLite and PostgreSQL: grades, scores and explanations, onlyCertainMatches, count, the stored
patient form, what is never returned, and the 400s."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import FHIR_JSON

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
EXPLANATION = "urn:prm:fhir:StructureDefinition:match-explanation"


def _patient(given: str, family: str, birth: str | None, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient",
                                "name": [{"family": family, "given": [given]}],
                                "gender": extra.pop("gender", "female")}
    if birth:
        resource["birthDate"] = birth
    resource.update(extra)
    return resource


def _store(client: TestClient, resource_id: str, resource: dict[str, Any]) -> None:
    response = client.put(f"/fhir/Patient/{resource_id}", json=resource | {"id": resource_id},
                          headers=FHIR_JSON)
    assert response.status_code == 201, response.text


def _dataset(client: TestClient) -> None:
    phone = [{"system": "phone", "value": "(617) 495-2000"}]
    _store(client, "ana", _patient("Ana", "Rivera", "1984-03-09", telecom=phone,
                                   address=[{"line": ["12 Elm St"], "postalCode": "02115"}]))
    _store(client, "twin", _patient("Maria", "Rivera", "1984-03-09", telecom=phone,
                                    address=[{"line": ["12 Elm St"], "postalCode": "02115"}]))
    _store(client, "husband", _patient("Carlos", "Rivera", "1980-11-30", gender="male",
                                       address=[{"line": ["12 Elm St"], "postalCode": "02115"}]))
    _store(client, "robert", _patient("Robert", "Smith", "1970-01-02", gender="male",
                                      identifier=[{"system": "http://hl7.org/fhir/sid/us-ssn",
                                                   "value": "123-45-6789"}]))
    _store(client, "lee", _patient("Li", "Nguyen", "2001-07-15"))


def _match(client: TestClient, resource: dict[str, Any], **inputs: Any) -> dict[str, Any]:
    parameters = [{"name": "resource", "resource": resource}]
    parameters += [{"name": name, **value} for name, value in inputs.items()]
    response = client.post("/fhir/Patient/$match", headers=FHIR_JSON,
                           json={"resourceType": "Parameters", "parameter": parameters})
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return bundle


def _graded(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    return [(entry["resource"]["id"],
             next(e["valueCode"] for e in entry["search"]["extension"] if e["url"] == MATCH_GRADE))
            for entry in bundle.get("entry", []) if entry["search"]["mode"] == "match"]


CASES: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    ("same name and birth date", _patient("Ana", "Rivera", "1984-03-09"), [("ana", "certain")]),
    ("nickname", _patient("Bob", "Smith", "1970-01-02", gender="male"), [("robert", "certain")]),
    ("SSN with a family-name change", _patient("Robert", "Smythe-Jones", "1970-01-02",
                                              gender="male",
                                              identifier=[{"system": "http://hl7.org/fhir/sid/us-ssn",
                                                           "value": "123456789"}]),
     [("robert", "certain")]),
    ("day and month swapped", _patient("Ana", "Rivera", "1984-09-03"), [("ana", "probable")]),
    ("accents and case", _patient("ANA", "RIVÉRA", "1984-03-09"), [("ana", "certain")]),
    ("nobody like this", _patient("Zed", "Nobody", "2002-02-02"), []),
]


@pytest.mark.parametrize(("label", "query", "expected"), CASES, ids=[c[0] for c in CASES])
def test_match_grades(client: TestClient, label: str, query: dict[str, Any],
                      expected: list[tuple[str, str]]) -> None:
    _dataset(client)
    graded = _graded(_match(client, query))
    assert graded[:len(expected)] == expected, (label, graded)
    if not expected:
        assert graded == []


def test_twin_and_household_are_never_certain(client: TestClient) -> None:
    _dataset(client)
    for query in (_patient("Maria", "Rivera", "1984-03-09"),
                  _patient("Carlos", "Rivera", "1980-11-30", gender="male")):
        graded = _graded(_match(client, query))
        certain = [resource_id for resource_id, grade in graded if grade == "certain"]
        assert len(certain) <= 1
        assert certain in ([], ["twin"], ["husband"])
        assert "ana" not in certain


def test_entries_carry_score_order_and_explanation(client: TestClient) -> None:
    _dataset(client)
    bundle = _match(client, _patient("Ana", "Rivera", "1984-03-09",
                                     telecom=[{"system": "phone", "value": "6174952000"}]))
    scores = [entry["search"]["score"] for entry in bundle["entry"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert bundle["total"] == len(bundle["entry"])
    first = bundle["entry"][0]
    assert first["fullUrl"].endswith("/Patient/ana")
    explained = {
        {part["url"]: next(v for k, v in part.items() if k.startswith("value"))
         for part in e["extension"]}["field"]: e
        for e in first["search"]["extension"] if e["url"] == EXPLANATION}
    assert {"family", "given", "birth_date", "phone"} <= set(explained)


def test_only_certain_matches_and_count(client: TestClient) -> None:
    _dataset(client)
    query = _patient("Ana", "Rivera", "1984-03-09")
    assert _graded(_match(client, query, onlyCertainMatches={"valueBoolean": True})) == [
        ("ana", "certain")]
    assert _graded(_match(client, _patient("Ana", "Rivera", "1984-09-03"),
                          onlyCertainMatches={"valueBoolean": True})) == []
    assert len(_graded(_match(client, _patient("X", "Rivera", "1984-03-09"),
                              count={"valueInteger": 1}))) <= 1


def test_stored_patient_form_excludes_itself_and_deleted(client: TestClient) -> None:
    _dataset(client)
    _store(client, "ana-dup", _patient("Ana", "Rivera", "1984-03-09"))
    response = client.get("/fhir/Patient/ana/$match")
    assert response.status_code == 200, response.text
    ids = [resource_id for resource_id, _ in _graded(response.json())]
    assert "ana" not in ids and ids[0] == "ana-dup"
    assert client.delete("/fhir/Patient/ana-dup").status_code == 204
    ids = [resource_id for resource_id, _ in _graded(client.get("/fhir/Patient/ana/$match").json())]
    assert "ana-dup" not in ids
    assert client.get("/fhir/Patient/nope/$match").status_code == 404


def test_partial_demographics_are_accepted(client: TestClient) -> None:
    _dataset(client)
    bundle = _match(client, {"resourceType": "Patient",
                             "telecom": [{"system": "phone", "value": "617-495-2000"}]})
    assert {resource_id for resource_id, _ in _graded(bundle)} <= {"ana", "twin"}


@pytest.mark.parametrize("body", [
    {"resourceType": "Parameters", "parameter": []},
    {"resourceType": "Parameters", "parameter": [{"name": "resource",
                                                  "resource": {"resourceType": "Observation"}}]},
    {"resourceType": "Patient"},
    {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient"}},
        {"name": "count", "valueInteger": 0}]},
    {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "birthDate": "yesterday"}}]},
    {"resourceType": "Parameters", "parameter": [{"name": "colour", "valueString": "red"}]},
])
def test_bad_input_is_400_operation_outcome(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/fhir/Patient/$match", json=body, headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


GIVEN = st.sampled_from(["Ana", "José", "Li", "Robert", "Mary-Jane", "Ngọc", "O'Neil"])
FAMILY = st.sampled_from(["Rivera", "Müller", "Nguyen", "O'Connell", "Smith Jones", "Ng"])
BIRTH = st.dates(min_value=date(1900, 1, 1), max_value=date(2024, 12, 31))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(given_name=GIVEN, family=FAMILY, birth=BIRTH,
       phone=st.sampled_from([None, "617-495-2000", "+44 20 7946 0958"]))
def test_a_stored_patient_matches_itself_as_certain(client: TestClient, given_name: str,
                                                    family: str, birth: date,
                                                    phone: str | None) -> None:
    resource = _patient(given_name, family, birth.isoformat())
    if phone:
        resource["telecom"] = [{"system": "phone", "value": phone}]
    created = client.post("/fhir/Patient", json=resource, headers=FHIR_JSON).json()
    graded = _graded(_match(client, resource, onlyCertainMatches={"valueBoolean": True}))
    assert graded == [(created["id"], "certain")]
    client.delete(f"/fhir/Patient/{created['id']}")


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=12)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "given", "family", "birthDate", "telecom", "value", "system",
                         "identifier", "address", "postalCode", "line", "gender", "x"]),
        children, max_size=4),
    max_leaves=12)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(patient_part=st.dictionaries(
    st.sampled_from(["name", "birthDate", "telecom", "identifier", "address", "gender"]),
    JSON_VALUES, max_size=4), extra=st.lists(st.tuples(
        st.sampled_from(["count", "onlyCertainMatches", "resource", "other"]),
        JSON_VALUES), max_size=2))
def test_random_match_bodies_are_never_a_server_error(
        client: TestClient, patient_part: dict[str, Any], extra: list[tuple[str, Any]]) -> None:
    parameters: list[dict[str, Any]] = [
        {"name": "resource", "resource": {"resourceType": "Patient", **patient_part}}]
    parameters += [{"name": name, "valueInteger": value} for name, value in extra]
    response = client.post("/fhir/Patient/$match", headers=FHIR_JSON,
                           json={"resourceType": "Parameters", "parameter": parameters})
    assert response.status_code in (200, 400), response.text
    assert response.json()["resourceType"] in ("Bundle", "OperationOutcome")
