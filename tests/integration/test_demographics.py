"""``GET /fhir/Patient/$demographics``: counts over the active patients written through the API,
with ages as of today, US Core race and ethnicity, languages and ``_lastUpdated`` windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine

from fhir_server.operations.demographics import _years_before
from storage.stored import now
from storage.tables import patients
from terminology import systems
from tests.factories import FHIR_JSON, coverage, issue_codes, patient

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
URL = "/fhir/Patient/$demographics"


def _category(url: str, code: str, text: str) -> dict[str, Any]:
    return {"url": url, "extension": [
        {"url": "ombCategory",
         "valueCoding": {"system": systems.CDC_RACE_ETHNICITY, "code": code}},
        {"url": "text", "valueString": text}]}


def _store(client: TestClient, number: int, *, born: date | None, gender: str | None = None,
           race: str | None = None, ethnicity: str | None = None,
           language: str | None = None, **extra: Any) -> str:
    resource = patient(identifier=[{"system": "urn:example:ehr", "value": f"E-{number}"}],
                       **extra)
    resource.pop("birthDate")
    resource.pop("gender")
    if born is not None:
        resource["birthDate"] = born.isoformat()
    if gender is not None:
        resource["gender"] = gender
    extensions = []
    if race:
        extensions.append(_category(systems.US_CORE_RACE, race, "race"))
    if ethnicity:
        extensions.append(_category(systems.US_CORE_ETHNICITY, ethnicity, "ethnicity"))
    if extensions:
        resource["extension"] = extensions
    if language:
        resource["communication"] = [{"language": {"coding": [
            {"system": systems.BCP_47, "code": language}]}, "preferred": True}]
    response = client.post("/fhir/Patient", json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _counts(body: dict[str, Any], name: str) -> dict[str | None, int]:
    found: dict[str | None, int] = {}
    for parameter in body["parameter"]:
        if parameter["name"] != name:
            continue
        parts = {part["name"]: part for part in parameter["part"]}
        value = parts.get("value")
        key = None
        if value is not None:
            key = (value.get("valueString") or value.get("valueCode")
                   or value.get("valueCoding", {}).get("code"))
        found[key] = parts["count"]["valueInteger"]
    return found


def _total(body: dict[str, Any]) -> int:
    return int(next(p["valueInteger"] for p in body["parameter"] if p["name"] == "total"))


@pytest.fixture
def population(client: TestClient) -> dict[str, str]:
    today = now().date()
    ids = {
        "child": _store(client, 1, born=_years_before(today, 10), gender="female",
                        race="2106-3", ethnicity="2135-2", language="es"),
        "almost 18": _store(client, 2, born=_years_before(today, 18) + timedelta(days=1),
                            gender="male",
            race="2054-5", ethnicity="2186-5", language="en"),
        "18 today": _store(client, 3, born=_years_before(today, 18), gender="male",
                           race="2028-9", ethnicity="2186-5", language="es"),
        "40": _store(client, 4, born=_years_before(today, 40), gender="other", race="UNK"),
        "60": _store(client, 5, born=_years_before(today, 60), gender="female",
                     race="2106-3", ethnicity="2135-2"),
        "80": _store(client, 6, born=_years_before(today, 80), gender="unknown"),
        "no birth date": _store(client, 7, born=None),
        "inactive": _store(client, 8, born=_years_before(today, 30), gender="female",
                           active=False),
        "deceased": _store(client, 9, born=_years_before(today, 90), gender="male",
                           deceasedBoolean=True),
        "deleted": _store(client, 10, born=_years_before(today, 50), gender="female"),
    }
    assert client.delete(f"/fhir/Patient/{ids['deleted']}").status_code == 204
    return ids


def test_counts_active_patients_by_band_gender_race_ethnicity_language(
        client: TestClient, population: dict[str, str]) -> None:
    response = client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["resourceType"] == "Parameters"
    assert _total(body) == 7
    assert next(p["valueDate"] for p in body["parameter"] if p["name"] == "date") == (
        now().date().isoformat())
    assert _counts(body, "ageBand") == {"0-17": 2, "18-34": 1, "35-54": 1, "55-74": 1,
                                        "75+": 1, None: 1}
    assert _counts(body, "gender") == {"female": 2, "male": 2, "other": 1, "unknown": 1,
                                       None: 1}
    assert _counts(body, "race") == {"1002-5": 0, "2028-9": 1, "2054-5": 1, "2076-8": 0,
                                     "2106-3": 2, "UNK": 1, "ASKU": 0, None: 2}
    assert _counts(body, "ethnicity") == {"2135-2": 2, "2186-5": 2, "UNK": 0, "ASKU": 0,
                                          None: 3}
    assert _counts(body, "language") == {"en": 1, "es": 2, None: 4}


def test_race_answers_us_core_codings(client: TestClient, population: dict[str, str]) -> None:
    body = client.get(URL).json()
    codings = [part["valueCoding"] for parameter in body["parameter"]
               if parameter["name"] == "race" for part in parameter["part"]
               if part["name"] == "value"]
    assert {"system": systems.CDC_RACE_ETHNICITY, "code": "2106-3",
            "display": "White"} in codings
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK",
            "display": "Unknown"} in codings


def test_insurance_with_without_and_by_type(client: TestClient,
                                           population: dict[str, str]) -> None:
    def insure(who: str, order: int, code: str, status: str = "active") -> None:
        resource = coverage(beneficiary={"reference": f"Patient/{population[who]}"},
                            order=order, status=status, identifier=None,
                            type={"coding": [{"system": ACT_CODE, "code": code}]})
        assert client.post("/fhir/Coverage", json=resource,
                           headers=FHIR_JSON).status_code == 201

    insure("child", 1, "HIP")
    insure("child", 2, "DENTPRG")
    insure("40", 1, "HIP")
    insure("60", 1, "MCPOL", status="cancelled")  # not in force: uninsured
    insure("inactive", 1, "HIP")  # not an active patient: not counted
    body = client.get(URL).json()
    assert _counts(body, "insurance") == {"with": 2, "without": 5}
    assert _counts(body, "insuranceType") == {"DENTPRG": 1, "HIP": 2}


def test_no_insurance_recorded_counts_everyone_without(client: TestClient,
                                                       population: dict[str, str]) -> None:
    body = client.get(URL).json()
    assert _counts(body, "insurance") == {"with": 0, "without": 7}
    assert _counts(body, "insuranceType") == {}


def test_last_updated_window_narrows_the_population(client: TestClient, engine: Engine,
                                                    population: dict[str, str]) -> None:
    with engine.begin() as connection:
        connection.execute(update(patients).where(patients.c.id == population["child"])
                           .values(last_updated=datetime(2020, 6, 1, tzinfo=UTC)))
    assert _total(client.get(URL, params={"_lastUpdated": "le2020-12-31"}).json()) == 1
    assert _total(client.get(URL, params={"_lastUpdated": "lt2020-06-01"}).json()) == 0
    assert _total(client.get(URL, params={"_lastUpdated": "2020-06"}).json()) == 1
    assert _total(client.get(URL, params={"_lastUpdated": "gt2020"}).json()) == 6
    both = client.get(f"{URL}?_lastUpdated=ge2020-01-01&_lastUpdated=lt2021-01-01").json()
    assert _total(both) == 1 and _counts(both, "ageBand")["0-17"] == 1


def test_empty_database_answers_zeros(client: TestClient) -> None:
    body = client.get(URL).json()
    assert _total(body) == 0
    assert set(_counts(body, "ageBand").values()) == {0}
    assert _counts(body, "language") == {}


@pytest.mark.parametrize("query", ["_lastUpdated=yesterday", "_lastUpdated=sa2020-01-01",
                                   "family=Rivera"])
def test_bad_parameters_are_400(client: TestClient, query: str) -> None:
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 400
    assert issue_codes(response.json()) == ["invalid"]


def test_is_declared_on_patient_in_the_capability_statement(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    patient_entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert "demographics" in {operation["name"] for operation in patient_entry["operation"]}
