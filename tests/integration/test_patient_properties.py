"""Property tests over HTTP: no body, however wrong, gets a 5xx, and every 4xx is an
OperationOutcome; any valid Patient reads back as it was sent (apart from server-set meta and
the generated MRN)."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import FHIR_JSON, patient, without_server_elements
from tests.strategies import valid_patients

PATIENTS = "/fhir/Patient"
HTTP_SETTINGS = settings(max_examples=40, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])
PATIENT_ELEMENTS = (
    "id", "meta", "implicitRules", "language", "text", "contained", "extension",
    "modifierExtension", "identifier", "active", "name", "telecom", "gender", "birthDate",
    "deceasedBoolean", "deceasedDateTime", "address", "maritalStatus", "multipleBirthBoolean",
    "multipleBirthInteger", "photo", "contact", "communication", "generalPractitioner",
    "managingOrganization", "link", "_birthDate", "_gender", "_active",
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
element_names = st.one_of(st.sampled_from(PATIENT_ELEMENTS), st.text(max_size=15))


def _assert_client_error_at_most(response: Response) -> None:
    """No 5xx; a 4xx carries an OperationOutcome with at least one issue."""
    assert response.status_code < 500, response.text[:1000]
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/fhir+json")
        body = response.json()
        assert body["resourceType"] == "OperationOutcome", body
        assert body["issue"], body


def _post(client: TestClient, body: Any) -> Response:
    return client.post(PATIENTS, content=json.dumps(body).encode(), headers=FHIR_JSON)


def _locations(value: Any) -> list[tuple[Any, Any]]:
    """(container, key or index) of every element inside ``value``, nested ones too."""
    found: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((value, key))
            found.extend(_locations(child))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((value, index))
            found.extend(_locations(child))
    return found


def _containers(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value, *(c for child in value.values() for c in _containers(child))]
    if isinstance(value, list):
        return [c for child in value for c in _containers(child)]
    return []


def _swap_type(value: Any) -> Any:
    """A value of another JSON type carrying the same content."""
    if isinstance(value, bool):
        return "true" if value else 0
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return value[0] if value else {}
    return [value]


@st.composite
def mutated_patients(draw: st.DrawFn) -> dict[str, Any]:
    """A valid Patient with one element replaced, retyped, re-texted, removed, or one added."""
    resource = copy.deepcopy(draw(st.one_of(st.just(patient()), valid_patients())))
    mutation = draw(st.sampled_from(["replace", "swap-type", "retext", "remove", "add"]))
    locations = _locations(resource)
    if mutation == "retext":
        locations = [(c, k) for c, k in locations if isinstance(c[k], str)] or locations
    if mutation == "add" or not locations:
        target = draw(st.sampled_from(_containers(resource)))
        target[draw(element_names)] = draw(json_values)
        return resource
    container, key = draw(st.sampled_from(locations))
    if mutation == "replace":
        container[key] = draw(json_values)
    elif mutation == "swap-type":
        container[key] = _swap_type(container[key])
    elif mutation == "retext":
        container[key] = draw(st.text(max_size=30))
    else:
        del container[key]
    return resource


@st.composite
def patients_with_bad_dates(draw: st.DrawFn) -> dict[str, Any]:
    resource = patient()
    text = draw(st.text(max_size=30))
    target = draw(st.sampled_from(["birthDate", "deceasedDateTime", "period", "lastUpdated"]))
    if target == "period":
        resource["name"][0]["period"] = {"start": text}
    elif target == "lastUpdated":
        resource["meta"] = {"lastUpdated": text}
    else:
        resource[target] = text
    return resource


# ----------------------------------------------------------------- never a server error


@HTTP_SETTINGS
@given(body=json_values)
def test_any_json_body_is_never_a_server_error(client: TestClient, body: Any) -> None:
    _assert_client_error_at_most(_post(client, body))


@HTTP_SETTINGS
@given(body=st.binary(max_size=200))
def test_any_bytes_body_is_never_a_server_error(client: TestClient, body: bytes) -> None:
    _assert_client_error_at_most(client.post(PATIENTS, content=body, headers=FHIR_JSON))


@HTTP_SETTINGS
@given(elements=st.dictionaries(element_names, json_values, max_size=5))
def test_patient_with_random_elements_is_never_a_server_error(
    client: TestClient, elements: dict[str, Any]
) -> None:
    _assert_client_error_at_most(_post(client, {"resourceType": "Patient", **elements}))


@HTTP_SETTINGS
@given(resource=mutated_patients())
def test_mutated_patient_is_never_a_server_error(
    client: TestClient, resource: dict[str, Any]
) -> None:
    _assert_client_error_at_most(_post(client, resource))


@HTTP_SETTINGS
@given(resource=patients_with_bad_dates())
def test_random_date_text_is_never_a_server_error(
    client: TestClient, resource: dict[str, Any]
) -> None:
    _assert_client_error_at_most(_post(client, resource))


@HTTP_SETTINGS
@given(resource=mutated_patients())
def test_mutated_update_is_never_a_server_error(
    client: TestClient, resource: dict[str, Any]
) -> None:
    resource_id = str(uuid.uuid4())
    response = client.put(f"{PATIENTS}/{resource_id}",
                          content=json.dumps(resource | {"id": resource_id}).encode(),
                          headers=FHIR_JSON)
    _assert_client_error_at_most(response)


@HTTP_SETTINGS
@given(params=st.dictionaries(
    st.one_of(st.sampled_from(["_count", "_offset", "_since", "_format"]), st.text(max_size=8)),
    st.text(max_size=25), max_size=3))
def test_random_history_parameters_are_never_a_server_error(
    client: TestClient, params: dict[str, str]
) -> None:
    _assert_client_error_at_most(client.get(f"{PATIENTS}/_history", params=params))


@HTTP_SETTINGS
@given(name=st.sampled_from(["_id", "identifier", "family", "given", "birthdate", "gender",
                             "email", "phone"]),
       value=st.text(max_size=25))
def test_random_if_none_exist_is_never_a_server_error(
    client: TestClient, name: str, value: str
) -> None:
    condition = f"{name}={quote(value)}"
    response = client.post(PATIENTS, json=patient(),
                           headers=FHIR_JSON | {"If-None-Exist": condition})
    _assert_client_error_at_most(response)


@HTTP_SETTINGS
@given(if_match=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=25))
def test_random_if_match_is_never_a_server_error(client: TestClient, if_match: str) -> None:
    resource_id = str(uuid.uuid4())
    response = client.put(f"{PATIENTS}/{resource_id}", json=patient(id=resource_id),
                          headers=FHIR_JSON | {"If-Match": if_match})
    _assert_client_error_at_most(response)


# ------------------------------------------------------------------------ nothing lost


@HTTP_SETTINGS
@given(resource=valid_patients())
def test_valid_patient_reads_back_as_sent(client: TestClient, resource: dict[str, Any]) -> None:
    created = _post(client, resource)
    assert created.status_code == 201, created.text
    read = client.get(f"{PATIENTS}/{created.json()['id']}")
    assert read.status_code == 200
    assert without_server_elements(read.json()) == resource


@HTTP_SETTINGS
@given(resource=valid_patients())
def test_valid_patient_create_response_equals_read(
    client: TestClient, resource: dict[str, Any]
) -> None:
    created = _post(client, resource)
    assert created.status_code == 201, created.text
    assert client.get(f"{PATIENTS}/{created.json()['id']}").json() == created.json()


@HTTP_SETTINGS
@given(first=valid_patients(), second=valid_patients())
def test_each_version_reads_back_as_sent(
    client: TestClient, first: dict[str, Any], second: dict[str, Any]
) -> None:
    resource_id = str(uuid.uuid4())
    for resource in (first, second):
        response = client.put(f"{PATIENTS}/{resource_id}", json=resource | {"id": resource_id},
                              headers=FHIR_JSON)
        assert response.status_code in (200, 201), response.text
    for version, sent in (("1", first), ("2", second)):
        read = client.get(f"{PATIENTS}/{resource_id}/_history/{version}").json()
        assert without_server_elements(read) == sent
