"""The terminology API on SQLite and PostgreSQL: ValueSet/$expand (filter, count, offset,
instance level, inline value sets), ValueSet/$validate-code, CodeSystem/$lookup and
CodeSystem/$validate-code by GET and POST, read and search of ValueSet, CodeSystem and
ConceptMap, 405 on writes, and the errors: unknown value set 404, not expandable 422, bad
input 400."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from storage.audit_tables import audit_events
from tests.factories import FHIR_JSON
from tests.tokens import TokenIssuer

VS = "http://hl7.org/fhir/ValueSet/"
GENDER = VS + "administrative-gender"
CDC = "urn:oid:2.16.840.1.113883.6.238"


def _parameters(body: dict[str, Any]) -> dict[str, list[Any]]:
    assert body["resourceType"] == "Parameters"
    found: dict[str, list[Any]] = {}
    for parameter in body["parameter"]:
        value = next((v for k, v in parameter.items() if k.startswith("value")),
                     parameter.get("part"))
        found.setdefault(parameter["name"], []).append(value)
    return found


def _codes(body: dict[str, Any]) -> list[str]:
    return [item["code"] for item in body["expansion"].get("contains", [])]


# ---------------------------------------------------------------------------- $expand


def test_expand_by_url(client: TestClient) -> None:
    response = client.get("/fhir/ValueSet/$expand", params={"url": GENDER})
    assert response.status_code == 200
    body = response.json()
    assert body["resourceType"] == "ValueSet" and body["url"] == GENDER
    assert "compose" not in body
    assert body["expansion"]["total"] == 4
    assert body["expansion"]["contains"][0] == {
        "system": "http://hl7.org/fhir/administrative-gender", "version": "4.0.1",
        "code": "male", "display": "Male"}


def test_expand_filter_count_and_offset(client: TestClient) -> None:
    response = client.get("/fhir/ValueSet/$expand", params={
        "url": VS + "languages", "filter": "english", "count": "2", "offset": "1"})
    expansion = response.json()["expansion"]
    assert expansion["total"] == 8  # en and its 7 regional tags among the common languages
    assert expansion["offset"] == 1 and len(expansion["contains"]) == 2
    assert {"name": "filter", "valueString": "english"} in expansion["parameter"]
    assert {"name": "count", "valueInteger": 2} in expansion["parameter"]
    everything = client.get("/fhir/ValueSet/$expand", params={
        "url": VS + "languages", "filter": "english"}).json()
    assert _codes(response.json()) == _codes(everything)[1:3]


def test_expand_count_zero_gives_the_total_only(client: TestClient) -> None:
    body = client.get("/fhir/ValueSet/$expand", params={"url": GENDER, "count": "0"}).json()
    assert body["expansion"]["total"] == 4 and "contains" not in body["expansion"]


def test_expand_instance_level(client: TestClient) -> None:
    body = client.get("/fhir/ValueSet/omb-race-category/$expand").json()
    assert _codes(body) == ["1002-5", "2028-9", "2054-5", "2076-8", "2106-3", "UNK", "ASKU"]


def test_expand_post_with_parameters(client: TestClient) -> None:
    response = client.post("/fhir/ValueSet/$expand", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "url",
             "valueUri": "http://terminology.hl7.org/ValueSet/v3-ParticipationMode"},
            {"name": "filter", "valueString": "written"}]})
    assert response.status_code == 200, response.text
    assert _codes(response.json()) == ["WRITTEN", "HANDWRIT", "ONLINEWRIT", "TYPEWRIT"]


def test_expand_an_inline_value_set(client: TestClient) -> None:
    inline = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": CDC, "filter": [{"property": "concept", "op": "is-a", "value": "2133-7"}]}]}}
    response = client.post("/fhir/ValueSet/$expand", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": inline},
                                                    {"name": "filter", "valueString": "cuban"}]})
    assert response.status_code == 200, response.text
    assert _codes(response.json()) == ["2182-4"]


def test_expand_display_language_and_designations(client: TestClient) -> None:
    body = client.get("/fhir/ValueSet/$expand", params={
        "url": VS + "languages", "filter": "de-CH", "displayLanguage": "de",
        "includeDesignations": "true"}).json()
    [swiss] = body["expansion"]["contains"]
    assert swiss["display"] == "Deutsch (Schweiz)"
    assert any(d["value"] == "German (Switzerland)" for d in swiss["designation"])


def test_expand_an_unknown_value_set_is_404(client: TestClient) -> None:
    response = client.get("/fhir/ValueSet/$expand",
                          params={"url": "http://example.org/ValueSet/none"})
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"
    assert client.get("/fhir/ValueSet/nothing-here/$expand").status_code == 404


def test_expand_of_mime_types_is_422(client: TestClient) -> None:
    response = client.get("/fhir/ValueSet/$expand", params={"url": VS + "mimetypes"})
    assert response.status_code == 422
    assert response.json()["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize("params", [
    {}, {"url": GENDER, "count": "-1"}, {"url": GENDER, "count": "x"},
    {"url": GENDER, "sort": "code"}, {"url": GENDER, "activeOnly": "yes"}])
def test_expand_bad_input_is_400(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/fhir/ValueSet/$expand", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_expand_post_needs_parameters(client: TestClient) -> None:
    response = client.post("/fhir/ValueSet/$expand", headers=FHIR_JSON,
                           json={"resourceType": "Patient"})
    assert response.status_code == 400


def test_expand_in_xml(client: TestClient) -> None:
    response = client.get("/fhir/ValueSet/$expand",
                          params={"url": GENDER, "_format": "xml"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+xml")
    assert b'<code value="female"/>' in response.content


# ---------------------------------------------------------------------- $validate-code


def test_validate_code_valid(client: TestClient) -> None:
    response = client.get("/fhir/ValueSet/$validate-code", params={
        "url": GENDER, "code": "female", "system": "http://hl7.org/fhir/administrative-gender"})
    assert response.status_code == 200
    assert _parameters(response.json()) == {"result": [True], "display": ["Female"]}


def test_validate_code_not_in_the_value_set(client: TestClient) -> None:
    found = _parameters(client.get("/fhir/ValueSet/$validate-code", params={
        "url": GENDER, "code": "F"}).json())
    assert found["result"] == [False]
    assert "'F'" in found["message"][0] and GENDER in found["message"][0]


def test_validate_code_wrong_display_is_valid_with_a_message(client: TestClient) -> None:
    found = _parameters(client.get("/fhir/ValueSet/$validate-code", params={
        "url": GENDER, "code": "male", "display": "Mail"}).json())
    assert found["result"] == [True] and "'Mail'" in found["message"][0]


def test_validate_code_instance_level_and_other_system(client: TestClient) -> None:
    found = _parameters(client.get("/fhir/ValueSet/administrative-gender/$validate-code",
                                   params={"code": "male", "system": "http://example.org"}
                                   ).json())
    assert found["result"] == [False]


def test_validate_coding_and_codeable_concept_by_post(client: TestClient) -> None:
    coding = {"system": "urn:ietf:bcp:47", "code": "es-419"}
    found = _parameters(client.post("/fhir/ValueSet/$validate-code", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "url", "valueUri": VS + "all-languages"},
            {"name": "coding", "valueCoding": coding}]}).json())
    assert found["result"] == [True]
    concept = {"coding": [{"system": "http://example.org", "code": "x"},
                          {"system": "urn:ietf:bcp:47", "code": "pt-BR"}]}
    found = _parameters(client.post("/fhir/ValueSet/$validate-code", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "url", "valueUri": VS + "languages"},
            {"name": "codeableConcept", "valueCodeableConcept": concept}]}).json())
    assert found["result"] == [True] and found["display"] == ["Portuguese (Brazil)"]


@pytest.mark.parametrize(("code", "valid"), [("application/pdf", True), ("pdf", False)])
def test_validate_mime_type_by_syntax(client: TestClient, code: str, valid: bool) -> None:
    found = _parameters(client.get("/fhir/ValueSet/$validate-code", params={
        "url": VS + "mimetypes", "code": code}).json())
    assert found["result"] == [valid]


def test_validate_abstract_code_needs_abstract_true(client: TestClient) -> None:
    params = {"url": "http://hl7.org/fhir/us/core/ValueSet/detailed-race", "code": "1000-9"}
    refused = _parameters(client.get("/fhir/ValueSet/$validate-code", params=params).json())
    assert refused["result"] == [False] and "abstract" in refused["message"][0]
    allowed = _parameters(client.get("/fhir/ValueSet/$validate-code",
                                     params=params | {"abstract": "true"}).json())
    assert allowed["result"] == [True]


def test_validate_code_needs_a_code(client: TestClient) -> None:
    assert client.get("/fhir/ValueSet/$validate-code", params={"url": GENDER}).status_code \
        == 400


def test_code_system_validate_code(client: TestClient) -> None:
    found = _parameters(client.get("/fhir/CodeSystem/$validate-code", params={
        "url": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}).json())
    assert found == {"result": [True], "display": ["Medical record number"]}
    found = _parameters(client.get("/fhir/CodeSystem/v2-0203/$validate-code",
                                   params={"code": "ZZZ"}).json())
    assert found["result"] == [False]


# ----------------------------------------------------------------------------- $lookup


def test_lookup_by_get(client: TestClient) -> None:
    response = client.get("/fhir/CodeSystem/$lookup", params={
        "system": "http://hl7.org/fhir/name-use", "code": "maiden"})
    assert response.status_code == 200
    found = _parameters(response.json())
    assert found["name"] == ["NameUse"] and found["version"] == ["4.0.1"]
    assert found["display"] == ["Name changed for Marriage"]
    properties = {part[0]["valueCode"]: part[1] for part in found["property"]}
    assert properties["parent"] == {"name": "value", "valueCode": "old"}
    assert "definition" in properties


def test_lookup_coding_by_post_with_property(client: TestClient) -> None:
    response = client.post("/fhir/CodeSystem/$lookup", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "coding", "valueCoding": {"system": CDC, "code": "2135-2"}},
            {"name": "property", "valueCode": "parent"}]})
    found = _parameters(response.json())
    assert found["display"] == ["Hispanic or Latino"]
    assert [part[1]["valueCode"] for part in found["property"]] == ["2133-7"]


def test_lookup_language_designations(client: TestClient) -> None:
    found = _parameters(client.get("/fhir/CodeSystem/$lookup", params={
        "system": "urn:ietf:bcp:47", "code": "nl", "displayLanguage": "nl"}).json())
    assert found["display"] == ["Nederlands"]
    assert found["designation"]


def test_lookup_prm_code(client: TestClient) -> None:
    found = _parameters(client.get("/fhir/CodeSystem/$lookup", params={
        "system": "urn:prm:message-channel", "code": "whatsapp"}).json())
    assert found["display"] == ["WhatsApp"]


@pytest.mark.parametrize(("params", "status"), [
    ({"system": "http://hl7.org/fhir/name-use", "code": "nope"}, 404),
    ({"system": "http://example.org/none", "code": "x"}, 404),
    ({"code": "x"}, 400), ({"system": "http://hl7.org/fhir/name-use", "code": "old",
                           "colour": "red"}, 400)])
def test_lookup_errors(client: TestClient, params: dict[str, str], status: int) -> None:
    response = client.get("/fhir/CodeSystem/$lookup", params=params)
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


# --------------------------------------------------------------------- read and search


@pytest.mark.parametrize(("resource_type", "resource_id"), [
    ("ValueSet", "languages"), ("CodeSystem", "cdcrec"),
    ("ConceptMap", "prm-message-channel")])
def test_read_bundled_resources(client: TestClient, resource_type: str,
                                resource_id: str) -> None:
    response = client.get(f"/fhir/{resource_type}/{resource_id}")
    assert response.status_code == 200
    assert response.json()["resourceType"] == resource_type
    assert response.json()["id"] == resource_id
    assert client.get(f"/fhir/{resource_type}/not-bundled").status_code == 404


def test_search_by_url(client: TestClient) -> None:
    bundle = client.get("/fhir/ValueSet", params={"url": VS + "link-type"}).json()
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    assert bundle["entry"][0]["fullUrl"] == "http://testserver/fhir/ValueSet/link-type"


def test_search_pages_with_next_links(client: TestClient) -> None:
    first = client.get("/fhir/ConceptMap", params={"_count": "3"}).json()
    assert first["total"] == 4 and len(first["entry"]) == 3
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(next_url.removeprefix("http://testserver")).json()
    assert len(second["entry"]) == 1
    assert not any(link["relation"] == "next" for link in second["link"])


def test_search_summary_count_and_true(client: TestClient) -> None:
    counted = client.get("/fhir/CodeSystem", params={"_summary": "count"}).json()
    assert counted["total"] > 20 and "entry" not in counted
    summary = client.get("/fhir/CodeSystem", params={"_id": "cdcrec", "_summary": "true"}
                         ).json()["entry"][0]["resource"]
    assert "concept" not in summary and summary["meta"]["tag"][0]["code"] == "SUBSETTED"


def test_search_by_post_form(client: TestClient) -> None:
    response = client.post("/fhir/ValueSet/_search", content=b"name=omb",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    assert {e["resource"]["id"] for e in response.json()["entry"]} == {
        "omb-race-category", "omb-ethnicity-category"}


def test_unknown_search_parameter_strict_is_400(client: TestClient) -> None:
    assert client.get("/fhir/ValueSet", params={"colour": "red"}).status_code == 200
    assert client.get("/fhir/ValueSet", params={"colour": "red"},
                      headers={"Prefer": "handling=strict"}).status_code == 400


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/fhir/ValueSet"), ("PUT", "/fhir/ValueSet/languages"),
    ("DELETE", "/fhir/CodeSystem/cdcrec"), ("PATCH", "/fhir/ConceptMap/prm-message-channel"),
    ("GET", "/fhir/ValueSet/_history"), ("GET", "/fhir/ValueSet/languages/_history/1")])
def test_writes_and_history_are_405(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, json={"resourceType": path.split("/")[2]},
                              headers=FHIR_JSON)
    assert response.status_code == 405
    assert response.json()["issue"][0]["code"] == "not-supported"


def test_any_valid_token_may_use_the_terminology(secured_client: TestClient,
                                                 token_issuer: TokenIssuer) -> None:
    params = {"url": GENDER}
    assert secured_client.get("/fhir/ValueSet/$expand", params=params).status_code == 401
    response = secured_client.get("/fhir/ValueSet/$expand", params=params,
                                  headers=token_issuer.headers("openid"))
    assert response.status_code == 200


def test_terminology_requests_are_not_audited(client: TestClient, engine: Engine) -> None:
    client.get("/fhir/ValueSet/$expand", params={"url": GENDER})
    client.get("/fhir/CodeSystem/$lookup", params={"system": CDC, "code": "2106-3"})
    client.get("/fhir/ValueSet/languages")
    client.get("/fhir/Patient")  # audited: the one event expected
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(audit_events)).scalar() == 1
