"""Random search query strings never produce a server error (hypothesis), on every type."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.communication_search import COMMUNICATION_REQUEST_SEARCH, COMMUNICATION_SEARCH
from mappings.document_reference_search import DOCUMENT_REFERENCE_SEARCH
from mappings.patient_search import PATIENT_SEARCH
from tests.factories import FHIR_JSON, document_reference, patient

NAMES = [*PATIENT_SEARCH, "_count", "_sort", "_total", "_summary", "_elements", "_include",
         "_revinclude", "_page", "_has:Patient:link:name", "_has:Patient:link:organization",
         "_has:Patient:link:link", "link:Patient.name", "link.gender",
         "unknown", "name.x"]
MODIFIERS = ["", ":exact", ":contains", ":missing", ":not", ":text", ":of-type", ":Patient",
             ":below", ":iterate"]
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["eq2000", "ge1980-04", "ap2020-01-01T10:00:00+14:00", "sa9999", "lt0001",
                     "true", "false", "a|b", "|x", "x|", "a\\,b", "Patient/1", "*",
                     "Patient:link", "%", "_", "\\", "$", "-birthdate,family", "0", "-1",
                     "99999999999", "http://testserver/fhir/Patient/1", "\x00", "é" * 300]),
)
QUERIES = st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(MODIFIERS), VALUES),
                   min_size=1, max_size=4)


def _encoded(query: list[tuple[str, str, str]]) -> str:
    """(name, modifier, value) triples as a query string."""
    return urlencode([(name + modifier, value) for name, modifier, value in query])


def _with_a_patient(client: TestClient, query: list[tuple[str, str, str]]) -> str:
    """``query`` as a query string, with at least one Patient stored to find."""
    if not client.get("/fhir/Patient?_summary=count").json().get("total"):
        client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
    return _encoded(query)


def _assert_searchset_or_refusal(response: Response, encoded: str, refusals: tuple[int, ...]) -> None:
    """Never a server error: a searchset Bundle, or one of ``refusals`` with an outcome."""
    assert response.status_code < 500, (encoded, response.text)
    body = response.json()
    if response.status_code == 200:
        assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
    else:
        assert response.status_code in refusals and \
            body["resourceType"] == "OperationOutcome", (encoded, response.text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERIES)
def test_random_search_is_never_a_server_error(
    client: TestClient, query: list[tuple[str, str, str]]
) -> None:
    encoded = _with_a_patient(client, query)
    _assert_searchset_or_refusal(client.get(f"/fhir/Patient?{encoded}"), encoded, (400, 404))


DOCUMENT_NAMES = [*DOCUMENT_REFERENCE_SEARCH, "_count", "_sort", "_include", "_revinclude",
                  "subject:Patient.name", "_has:DocumentReference:relatesto:status",
                  "relatesto.status", "unknown"]
DOCUMENT_VALUES = st.one_of(VALUES, st.sampled_from([
    "replaces$DocumentReference/1", "$", "a$b$c", "replaces$", "http://loinc.org|11502-2",
    "DocumentReference:subject", "DocumentReference:*", "-date,status", "image/png"]))
DOCUMENT_QUERIES = st.lists(
    st.tuples(st.sampled_from(DOCUMENT_NAMES), st.sampled_from([*MODIFIERS, ":Patient"]),
              DOCUMENT_VALUES), min_size=1, max_size=4)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=DOCUMENT_QUERIES)
def test_random_document_search_is_never_a_server_error(
    client: TestClient, query: list[tuple[str, str, str]]
) -> None:
    if not client.get("/fhir/DocumentReference?_summary=count").json().get("total"):
        client.post("/fhir/DocumentReference", json=document_reference(), headers=FHIR_JSON)
    encoded = _encoded(query)
    for path in ("/fhir/DocumentReference", "/fhir/Binary"):
        response = client.get(f"{path}?{encoded}")
        assert response.status_code < 500, (path, encoded, response.text)
        assert response.json()["resourceType"] in ("Bundle", "OperationOutcome")


MESSAGE_NAMES = [*COMMUNICATION_SEARCH, *COMMUNICATION_REQUEST_SEARCH, "_count", "_sort",
                 "_include", "_revinclude", "subject:Patient.name", "based-on.status",
                 "_has:Communication:based-on:status"]
MESSAGE_QUERIES = st.lists(
    st.tuples(st.sampled_from(MESSAGE_NAMES), st.sampled_from([*MODIFIERS, ":Patient"]),
              DOCUMENT_VALUES), min_size=1, max_size=4)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=MESSAGE_QUERIES)
def test_random_message_search_is_never_a_server_error(
    client: TestClient, query: list[tuple[str, str, str]]
) -> None:
    encoded = _encoded(query)
    for path in ("/fhir/Communication", "/fhir/CommunicationRequest"):
        response = client.get(f"{path}?{encoded}")
        assert response.status_code < 500, (path, encoded, response.text)
        assert response.json()["resourceType"] in ("Bundle", "OperationOutcome")


SYSTEM_NAMES = ["_type", "_id", "_lastUpdated", "_tag", "_profile", "_security", "_count",
                "_page", "_total", "_summary", "_elements", "_sort", "_include", "family",
                "status", "unknown"]
SYSTEM_VALUES = st.one_of(VALUES, st.sampled_from([
    "Patient", "Patient,Communication", "Communication,Patient,Patient", "Nope", ",", "",
    "Patient,", "WzAsbnVsbF0", "WzksbnVsbF0", "WyJ4IiwxXQ"]))
SYSTEM_QUERIES = st.lists(st.tuples(st.sampled_from(SYSTEM_NAMES),
                                    st.sampled_from(["", ":missing", ":not", ":exact"]),
                                    SYSTEM_VALUES), min_size=1, max_size=4)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=SYSTEM_QUERIES)
def test_random_system_search_is_never_a_server_error(
    client: TestClient, query: list[tuple[str, str, str]]
) -> None:
    encoded = _with_a_patient(client, query)
    _assert_searchset_or_refusal(client.get(f"/fhir?{encoded}"), encoded, (400, 403, 404))
