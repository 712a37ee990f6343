"""Patient/{id}/$everything: the patient's compartment across the served types, with _type,
_since, _count and stable paging; scopes apply per type."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import (
    FHIR_JSON,
    communication,
    communication_request,
    document_reference,
    patient,
)
from tests.tokens import TokenIssuer


def _record(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    headers = FHIR_JSON | (headers or {})
    made: dict[str, Any] = {}
    for name in ("p-1", "p-2"):
        client.put(f"/fhir/Patient/{name}", json=patient(id=name), headers=headers)
        made[name] = [
            client.post("/fhir/DocumentReference", json=document_reference(
                subject={"reference": f"Patient/{name}"}), headers=headers).json(),
            client.post("/fhir/Communication", json=communication(
                subject={"reference": f"Patient/{name}"},
                recipient=[{"reference": f"Patient/{name}"}]), headers=headers).json(),
            client.post("/fhir/CommunicationRequest", json=communication_request(
                status="draft", subject={"reference": f"Patient/{name}"},
                recipient=[{"reference": f"Patient/{name}"}]), headers=headers).json()]
    return made


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
            for entry in bundle.get("entry", []) if entry["search"]["mode"] == "match"]


def test_everything_returns_the_compartment_only(client: TestClient) -> None:
    made = _record(client)
    bundle = client.get("/fhir/Patient/p-1/$everything").json()
    assert bundle["type"] == "searchset"
    ids = _ids(bundle)
    assert ids[0] == "Patient/p-1"
    expected = {"Patient/p-1", *(f"{r['resourceType']}/{r['id']}" for r in made["p-1"])}
    binaries = {i for i in ids if i.startswith("Binary/")}
    assert set(ids) - binaries == expected
    assert not any(f"{r['resourceType']}/{r['id']}" in ids for r in made["p-2"])


def test_paging_walks_every_type_once(client: TestClient) -> None:
    _record(client)
    everything = _ids(client.get("/fhir/Patient/p-1/$everything").json())
    seen: list[str] = []
    url: str | None = "/fhir/Patient/p-1/$everything?_count=2"
    while url:
        bundle = client.get(url).json()
        assert len(_ids(bundle)) <= 2
        seen += _ids(bundle)
        url = next((link["url"].replace("http://testserver", "")
                    for link in bundle["link"] if link["relation"] == "next"), None)
    assert seen == everything


def test_a_page_that_ends_with_the_compartment_has_no_next_link(client: TestClient) -> None:
    _record(client)
    total = len(_ids(client.get("/fhir/Patient/p-1/$everything").json()))
    for count in (total, total - 1):  # the last page full, then one short of the whole
        url: str | None = f"/fhir/Patient/p-1/$everything?_count={count}"
        pages: list[int] = []
        while url:
            bundle = client.get(url).json()
            pages.append(len(_ids(bundle)))
            url = next((link["url"].replace("http://testserver", "")
                        for link in bundle["link"] if link["relation"] == "next"), None)
        assert 0 not in pages and sum(pages) == total, (count, pages)


def test_type_and_since_narrow_it(client: TestClient) -> None:
    _record(client)
    only = _ids(client.get("/fhir/Patient/p-1/$everything?_type=Communication,Patient").json())
    assert [i.split("/")[0] for i in only] == ["Patient", "Communication"]
    time.sleep(1.1)
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)
    client.put("/fhir/Patient/p-1", json=patient(id="p-1", gender="other"), headers=FHIR_JSON)
    assert _ids(client.get(f"/fhir/Patient/p-1/$everything?_since={moment}").json()) == \
        ["Patient/p-1"]


def test_bad_inputs_are_400_and_unknown_patient_404(client: TestClient) -> None:
    for query in ("_type=Observation", "_count=0", "_since=yesterday", "_page=garbage",
                  "start=2020-01-01", "colour=red"):
        assert client.get(f"/fhir/Patient/p-1/$everything?{query}").status_code == 400, query
    assert client.get("/fhir/Patient/nobody/$everything").status_code == 404


def test_types_the_token_may_not_search_are_left_out(secured_client: TestClient,
                                                     token_issuer: TokenIssuer) -> None:
    _record(secured_client, token_issuer.headers("user/*.cruds"))
    headers = token_issuer.headers("user/Patient.rs user/Communication.s")
    bundle = secured_client.get("/fhir/Patient/p-1/$everything", headers=headers).json()
    assert {i.split("/")[0] for i in _ids(bundle)} == {"Patient", "Communication"}
    outcome = bundle["entry"][-1]
    assert outcome["search"]["mode"] == "outcome"
    assert "DocumentReference" in outcome["resource"]["issue"][0]["diagnostics"]
    patient_scoped = token_issuer.headers("patient/*.rs", patient="p-2")
    assert secured_client.get("/fhir/Patient/p-1/$everything",
                              headers=patient_scoped).status_code == 404


def test_compartment_search_limits_a_type_search_to_the_patient(client: TestClient) -> None:
    made = _record(client)
    bundle = client.get("/fhir/Patient/p-1/Communication?status=completed&_count=5").json()
    assert _ids(bundle) == [f"Communication/{made['p-1'][1]['id']}"]
    assert bundle["link"][0]["url"].startswith("http://testserver/fhir/Patient/p-1/Communication?")
    assert bundle["entry"][0]["fullUrl"].endswith(f"/fhir/Communication/{made['p-1'][1]['id']}")
    by_post = client.post("/fhir/Patient/p-2/DocumentReference/_search", data={"status": "current"},
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert _ids(by_post.json()) == [f"DocumentReference/{made['p-2'][0]['id']}"]
    assert client.get("/fhir/Patient/p-1/Observation").status_code == 404
    assert client.get("/fhir/Patient/p-1/_history").status_code == 200


def test_compartment_search_pages_stay_in_the_compartment(client: TestClient) -> None:
    _record(client)
    for _ in range(3):
        client.post("/fhir/Communication", json=communication(
            subject={"reference": "Patient/p-1"}), headers=FHIR_JSON)
    first = client.get("/fhir/Patient/p-1/Communication?_count=2").json()
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert "/fhir/Patient/p-1/Communication?" in following
    second = client.get(following.replace("http://testserver", "")).json()
    assert len(_ids(first)) == 2 and len(_ids(second)) == 2
    assert not set(_ids(first)) & set(_ids(second))
