"""System search, ``GET [base]?params`` and ``POST [base]/_search``
(https://hl7.org/fhir/R4/http.html#search): the search on each type ``_type`` names, one type
after another, with stable paging across types, parameters that must apply to every named type,
totals, and scopes applied per type; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import FHIR_JSON, communication, issue_codes, patient
from tests.tokens import TokenIssuer


def _made(client: TestClient, headers: dict[str, str] | None = None) -> set[str]:
    """Three Patients and two Communications; their ``Type/id``."""
    headers = FHIR_JSON | (headers or {})
    made = set()
    for family in ("Ames", "Baker", "Cruz"):
        created = client.post("/fhir/Patient", json=patient(name=[{"family": family}]),
                              headers=headers).json()
        made.add(f"Patient/{created['id']}")
    for _ in range(2):
        created = client.post("/fhir/Communication", json=communication(), headers=headers)
        assert created.status_code == 201, created.text
        made.add(f"Communication/{created.json()['id']}")
    return made


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
            for entry in bundle.get("entry", []) if entry["search"]["mode"] == "match"]


def _next(bundle: dict[str, Any]) -> str | None:
    return next((link["url"].replace("http://testserver", "") for link in bundle["link"]
                 if link["relation"] == "next"), None)


def test_pages_walk_every_named_type_once(client: TestClient) -> None:
    made = _made(client)
    for count in (1, 2, 4, 5):
        url: str | None = f"/fhir?_type=Patient,Communication&_count={count}"
        seen: list[str] = []
        while url:
            response = client.get(url)
            assert response.status_code == 200, response.text
            bundle = response.json()
            assert bundle["type"] == "searchset"
            assert 0 < len(_ids(bundle)) <= count, (count, bundle)
            relations = [link["relation"] for link in bundle["link"]]
            assert relations[:2] == ["self", "first"] or relations == ["self"], relations
            seen += _ids(bundle)
            url = _next(bundle)
        assert sorted(seen) == sorted(made), count
        assert [kind.split("/")[0] for kind in seen] == ["Patient"] * 3 + ["Communication"] * 2


def test_pages_stay_stable_while_others_write(client: TestClient) -> None:
    made = _made(client)
    first = client.get("/fhir?_type=Patient,Communication&_count=2").json()
    client.post("/fhir/Patient", json=patient(name=[{"family": "Later"}]), headers=FHIR_JSON)
    seen, url = _ids(first), _next(first)
    while url:
        bundle = client.get(url).json()
        seen += _ids(bundle)
        url = _next(bundle)
    assert len(seen) == len(set(seen)) and made <= set(seen)


def test_common_parameters_apply_to_every_type(client: TestClient) -> None:
    made = _made(client)
    patient_id = next(item for item in made if item.startswith("Patient/")).split("/")[1]
    bundle = client.get(f"/fhir?_type=Patient,Communication&_id={patient_id}").json()
    assert _ids(bundle) == [f"Patient/{patient_id}"]
    assert sorted(_ids(client.get(
        "/fhir?_type=Patient,Communication&_lastUpdated=gt2020-01-01").json())) == sorted(made)
    assert _ids(client.get(
        "/fhir?_type=Patient,Communication&_lastUpdated=lt2020-01-01").json()) == []
    # without _type: every type the parameters apply to (here only Patient defines family)
    assert sorted(_ids(client.get("/fhir?family=Baker").json())) == [
        item for item in sorted(made) if item.startswith("Patient/")
        and client.get(f"/fhir/{item}").json()["name"][0]["family"] == "Baker"]


def test_a_parameter_a_named_type_lacks_is_refused(client: TestClient) -> None:
    response = client.get("/fhir?_type=Patient,Communication&family=Baker")
    assert response.status_code == 400
    assert "'family' is not defined for Communication" in \
        response.json()["issue"][0]["diagnostics"]


def test_wrong_type_sort_and_count_are_refused(client: TestClient) -> None:
    for query, words in (("_type=Patient,Nope", "'Nope' is not a type served here"),
                         ("_type=Patient,Communication&_sort=_id", "_sort is not supported"),
                         ("_type=Patient,Communication&_include=Patient:organization",
                          "_include is not supported"),
                         ("_count=-1", "_count"), ("_page=not-a-token", "_page")):
        response = client.get(f"/fhir?{query}")
        assert response.status_code == 400, query
        assert words in response.json()["issue"][0]["diagnostics"], (query, response.text)
        assert issue_codes(response.json())


def test_sort_on_one_type_is_that_types_search(client: TestClient) -> None:
    _made(client)
    bundle = client.get("/fhir?_type=Patient&_sort=-family").json()
    assert [entry["resource"]["name"][0]["family"] for entry in bundle["entry"]] == \
        ["Cruz", "Baker", "Ames"]


def test_total_is_the_sum_of_the_types_totals(client: TestClient) -> None:
    _made(client)
    bundle = client.get("/fhir?_type=Patient,Communication&_total=accurate&_count=2").json()
    assert bundle["total"] == 5 and len(_ids(bundle)) == 2
    counted = client.get("/fhir?_type=Patient,Communication&_count=0").json()
    assert counted["total"] == 5 and "entry" not in counted
    summary = client.get("/fhir?_type=Patient,Communication&_summary=count").json()
    assert summary["total"] == 5 and "entry" not in summary


def test_summary_and_elements_apply_to_each_resource(client: TestClient) -> None:
    _made(client)
    bundle = client.get("/fhir?_type=Patient,Communication&_elements=id").json()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert set(resource) <= {"resourceType", "id", "meta"}, resource
        assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "SUBSETTED"} in resource["meta"]["tag"]


def test_post_search_form_equals_get(client: TestClient) -> None:
    _made(client)
    got = client.get("/fhir?_type=Patient,Communication&_count=10").json()
    posted = client.post("/fhir/_search", data={"_type": "Patient,Communication",
                                                "_count": "10"})
    assert posted.status_code == 200, posted.text
    assert _ids(posted.json()) == _ids(got)


def test_unknown_parameter_lenient_is_left_out_strict_is_400(client: TestClient) -> None:
    _made(client)
    lenient = client.get("/fhir?_type=Patient&bogus=1")
    assert lenient.status_code == 200
    assert "bogus" not in lenient.json()["link"][0]["url"]
    assert len(_ids(lenient.json())) == 3
    (warning,) = [e["resource"] for e in lenient.json()["entry"]
                  if e["search"]["mode"] == "outcome"]
    assert warning["issue"][0]["severity"] == "warning"
    assert "bogus" in warning["issue"][0]["diagnostics"]
    assert "Patient" in warning["issue"][0]["diagnostics"]
    strict = client.get("/fhir?_type=Patient&bogus=1", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert "'bogus'" in strict.json()["issue"][0]["diagnostics"]


def test_scopes_apply_per_type(secured_client: TestClient, token_issuer: TokenIssuer) -> None:
    writer = token_issuer.headers("user/Patient.c user/Communication.c")
    made = _made(secured_client, writer)
    patients_only = token_issuer.headers("user/Patient.rs")
    everything = secured_client.get("/fhir", headers=patients_only).json()
    assert sorted(_ids(everything)) == sorted(i for i in made if i.startswith("Patient/"))
    assert not [e for e in everything.get("entry", []) if e["search"]["mode"] == "outcome"]
    named = secured_client.get("/fhir?_type=Patient,Communication",
                               headers=patients_only).json()
    outcome = next(e["resource"] for e in named["entry"] if e["search"]["mode"] == "outcome")
    assert "Communication" in outcome["issue"][0]["diagnostics"]
    assert sorted(_ids(named)) == sorted(i for i in made if i.startswith("Patient/"))


def test_declared_system_parameters_are_served(client: TestClient) -> None:
    """Every rest.searchParam of the CapabilityStatement is applied by a system search (kept
    in the self link, i.e. not ignored), never a 4xx."""
    _made(client)
    declared = client.get("/fhir/metadata").json()["rest"][0]["searchParam"]
    samples = {"_type": "Patient", "_id": "x", "_lastUpdated": "gt2020-01-01", "_tag": "a|b",
               "_profile": "http://example.org/p", "_security": "a|b"}
    for parameter in declared:
        name = parameter["name"]
        response = client.get(f"/fhir?{name}={samples[name]}",
                              headers={"Prefer": "handling=strict"})
        assert response.status_code == 200, (name, response.text)
        assert f"{name}=" in response.json()["link"][0]["url"], name
