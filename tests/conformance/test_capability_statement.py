"""The CapabilityStatement (https://hl7.org/fhir/R4/capabilitystatement.html) tells the truth:
every interaction, flag, search parameter and patch format it declares is served, and every
interaction the server serves is declared; what it does not declare is not served."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from fhir_server.http.routes import fhir_routes
from terminology.catalog_search import PARAMETERS as CATALOG_PARAMETERS
from tests.factories import (
    FHIR_JSON,
    binary,
    communication,
    communication_request,
    coverage,
    document_reference,
    issue_codes,
    patient,
)

JSON_PATCH = "application/json-patch+json"
TERMINOLOGY = {"ValueSet": "administrative-gender", "CodeSystem": "administrative-gender",
               "ConceptMap": "prm-message-priority"}
"""Read-only types of the bundled terminology, and a bundled id of each."""
SAMPLES: dict[str, Callable[[], dict[str, Any]]] = {
    "Patient": patient, "DocumentReference": document_reference, "Binary": binary,
    "Communication": communication,
    # a draft: an active send order needs a live recipient with a phone, which the walk lacks
    "CommunicationRequest": lambda: communication_request(status="draft"),
    # no order: the walk creates several, and a patient holds one Coverage per slot
    "Coverage": lambda: coverage(order=None),
    "Provenance": lambda: {"resourceType": "Provenance", "recorded": "2024-01-01T00:00:00Z",
                           "target": [{"reference": "Patient/x"}],
                           "agent": [{"who": {"display": "x"}}]},
    "AuditEvent": lambda: {"resourceType": "AuditEvent", "recorded": "2024-01-01T00:00:00Z",
                           "type": {"system": "http://terminology.hl7.org/CodeSystem/"
                                              "audit-event-type", "code": "rest"},
                           "agent": [{"who": {"display": "x"}, "requestor": True}],
                           "source": {"observer": {"display": "x"}}},
    **{name: partial(dict, resourceType=name, status="draft") for name in TERMINOLOGY}}
# If-None-Exist criteria that select the sample, per resource type.
SAMPLE_CRITERIA: dict[str, str] = {
    "Patient": "identifier=http://hospital.example.org/ids|A-1001",
    "DocumentReference": "identifier=urn:example:documents|doc-1",
    "Communication": "identifier=urn:example:messages|msg-1",
    "CommunicationRequest": "identifier=urn:example:requests|req-1",
    "Coverage": "identifier=urn:prm:insurance-policy|POL-1001",
}
# A JSON Patch per type that changes the sample (types declaring patch).
PATCHES: dict[str, bytes] = {
    "Patient": b'[{"op": "replace", "path": "/gender", "value": "male"}]',
    "DocumentReference": b'[{"op": "replace", "path": "/description", "value": "Changed"}]',
    "Communication": b'[{"op": "replace", "path": "/status", "value": "in-progress"}]',
    "CommunicationRequest": b'[{"op": "replace", "path": "/status", "value": "on-hold"}]',
    "Coverage": b'[{"op": "replace", "path": "/status", "value": "cancelled"}]',
}

# Every route of fhir_server/http/routes.py -> the capability code it serves
# (CapabilityStatement.rest.resource.interaction.code; None: not a resource interaction).
SERVED_ROUTES: dict[tuple[str, str], str | None] = {
    ("GET", "/fhir/metadata"): None,
    ("POST", "/fhir/{resource_type}"): "create",
    ("GET", "/fhir/{resource_type}"): "search-type",
    ("PUT", "/fhir/{resource_type}"): "update",  # conditional update
    ("PATCH", "/fhir/{resource_type}"): "patch",  # conditional patch
    ("DELETE", "/fhir/{resource_type}"): "delete",  # conditional delete
    ("POST", "/fhir/{resource_type}/_search"): "search-type",
    ("GET", "/fhir/{resource_type}/_history"): "history-type",
    ("GET", "/fhir/{resource_type}/{resource_id}"): "read",
    ("PUT", "/fhir/{resource_type}/{resource_id}"): "update",
    ("PATCH", "/fhir/{resource_type}/{resource_id}"): "patch",
    ("DELETE", "/fhir/{resource_type}/{resource_id}"): "delete",
    ("GET", "/fhir/{resource_type}/{resource_id}/_history"): "history-instance",
    ("GET", "/fhir/{resource_type}/{resource_id}/_history/{version_id}"): "vread",
}

# A value the sample matches, per type and search parameter name.
PATIENT_SEARCH_VALUES: dict[str, str] = {
    "family": "Rivera", "given": "Ana", "name": "Rivera", "birthdate": "1984-03-09",
    "gender": "female", "identifier": "http://hospital.example.org/ids|A-1001",
    "phone": "(617) 495-2000", "email": "ana.rivera@example.org",
    "telecom": "ana.rivera@example.org", "address": "Boston", "address-city": "Boston",
    "address-state": "MA", "address-postalcode": "02115", "address-country": "US",
    "active": "true", "_lastUpdated": "ge2000-01-01",
    "phonetic": "Rivera", "deceased": "false",
}
DOCUMENT_SEARCH_VALUES: dict[str, str] = {
    "status": "current", "subject": "Patient/p-1", "patient": "p-1",
    "identifier": "urn:example:documents|doc-1", "category": "http://loinc.org|11502-2",
    "type": "http://loinc.org|11502-2", "contenttype": "application/pdf",
    "description": "Blood", "date": "2024-05-01", "author": "Practitioner/pr-1",
    "_lastUpdated": "ge2000-01-01", "language": "en",
}
SEARCH_VALUES: dict[str, dict[str, str]] = {
    "Patient": PATIENT_SEARCH_VALUES, "DocumentReference": DOCUMENT_SEARCH_VALUES,
    "Binary": {"_lastUpdated": "ge2000-01-01"},
    "Communication": {"status": "completed", "subject": "Patient/p-1", "patient": "p-1",
                      "medium": "urn:prm:message-channel|sms", "sent": "2024-05-02",
                      "identifier": "urn:example:messages|msg-1",
                      "based-on": "CommunicationRequest/req-1", "sender": "Organization/clinic"},
    "Provenance": {},
    "AuditEvent": {},
    "ValueSet": {"url": "http://hl7.org/fhir/ValueSet/administrative-gender",
                 "name": "administrativeg", "title": "Administrative", "version": "4.0.1",
                 "status": "active"},
    "CodeSystem": {"url": "http://hl7.org/fhir/administrative-gender",
                   "name": "administrativeg", "title": "Administrative", "version": "4.0.1",
                   "status": "active"},
    "ConceptMap": {"url": "urn:prm:fhir:ConceptMap:prm-message-priority",
                   "name": "PrmMessagePri", "title": "FHIR request", "status": "active"},
    "Coverage": {"status": "active", "beneficiary": "Patient/p-1", "patient": "p-1",
                 "identifier": "urn:prm:insurance-policy|POL-1001", "payor-name": "blue",
                 "type": "HIP", "class-type": "group", "class-value": "GRP-42",
                 "_lastUpdated": "ge2000-01-01"},
    "CommunicationRequest": {"status": "draft", "priority": "routine", "patient": "p-1",
                             "occurrence": "2024-05-02", "authored": "2024-05",
                             "medium": "sms", "identifier": "urn:example:requests|req-1",
                             "requester": "Practitioner/pr-1", "category": "reminder"},
}
# A well-formed value per search parameter type, for names without a known match.
SEARCH_TYPE_VALUES: dict[str, str] = {
    "string": "x", "token": "x", "date": "ge1900-01-01", "reference": "Patient/x",
    "number": "1", "quantity": "1", "uri": "http://example.org/x",
    "composite": "replaces$DocumentReference/x",
}
OTHER_PATCH_TYPES = ("application/fhir+json", "application/json", "application/xml-patch+xml",
                     "application/merge-patch+json", "text/plain")


# ---------------------------------------------------------------------------- helpers


def _statement(client: TestClient) -> dict[str, Any]:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _resources(statement: dict[str, Any]) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = statement["rest"][0].get("resource", [])
    return resources


def _declared(resource: dict[str, Any]) -> set[str]:
    return {interaction["code"] for interaction in resource.get("interaction", [])}


def _create(client: TestClient, resource_type: str) -> str:
    if resource_type in TERMINOLOGY:  # read-only: bundled
        return TERMINOLOGY[resource_type]
    if resource_type == "Provenance":  # read-only: made by a merge
        return _merge_provenance(client)
    if resource_type == "AuditEvent":  # read-only: made by any access
        client.get("/fhir/Patient")
        events = client.get("/fhir/AuditEvent?_count=1&subtype=search-type").json()
        audit_id: str = events["entry"][0]["resource"]["id"]
        return audit_id
    sample = SAMPLES.get(resource_type)
    assert sample is not None, f"no sample {resource_type} in SAMPLES: add one to check it"
    response = client.post(f"/fhir/{resource_type}", json=sample(), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    resource_id: str = response.json()["id"]
    return resource_id


def _merge_provenance(client: TestClient) -> str:
    ids = [client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()["id"]
           for _ in range(2)]
    response = client.post("/fhir/Patient/$merge", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "source-patient", "valueReference": {"reference": f"Patient/{ids[0]}"}},
            {"name": "target-patient", "valueReference": {"reference": f"Patient/{ids[1]}"}}]})
    assert response.status_code == 200, response.text
    merge_id: str = next(p["valueString"] for p in response.json()["parameter"]
                         if p["name"] == "merge")
    return merge_id


def _patch_gender(client: TestClient, path: str, content_type: str) -> Response:
    return client.patch(path, content=b'[{"op": "replace", "path": "/gender", "value": "male"}]',
                        headers={"Content-Type": content_type})


def _patch(client: TestClient, resource_type: str, resource_id: str) -> Response:
    return client.patch(f"/fhir/{resource_type}/{resource_id}",
                        content=PATCHES.get(resource_type, PATCHES["Patient"]),
                        headers={"Content-Type": JSON_PATCH})


def _read_json(client: TestClient, resource_type: str, resource_id: str) -> dict[str, Any]:
    """The resource as FHIR JSON (a Binary read without Accept answers its raw bytes)."""
    response = client.get(f"/fhir/{resource_type}/{resource_id}", headers=FHIR_ACCEPT)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _new_version(client: TestClient, resource_type: str, resource_id: str) -> Response:
    """Version 2 of the resource: a patch, or for types without patch an update."""
    if resource_type in PATCHES:
        return _patch(client, resource_type, resource_id)
    assert resource_type == "Binary", f"add a JSON Patch for {resource_type} to PATCHES"
    current = _read_json(client, resource_type, resource_id)
    return client.put(f"/fhir/{resource_type}/{resource_id}",
                      json=current | {"contentType": "image/png", "data": PNG_DATA},
                      headers=FHIR_JSON)


# A request exercising each type-level interaction on a resource created for it.
Exercise = Callable[[TestClient, str, str], Response]
TYPE_EXERCISES: dict[str, Exercise] = {
    "read": lambda c, t, i: c.get(f"/fhir/{t}/{i}"),
    "vread": lambda c, t, i: c.get(f"/fhir/{t}/{i}/_history/1"),
    "update": lambda c, t, i: c.put(f"/fhir/{t}/{i}", json=_read_json(c, t, i),
                                    headers=FHIR_JSON),
    "patch": lambda c, t, i: _patch(c, t, i),
    "delete": lambda c, t, i: c.delete(f"/fhir/{t}/{i}"),
    "history-instance": lambda c, t, i: c.get(f"/fhir/{t}/{i}/_history"),
    "history-type": lambda c, t, i: c.get(f"/fhir/{t}/_history"),
    "create": lambda c, t, i: c.post(f"/fhir/{t}", json=SAMPLES[t](), headers=FHIR_JSON),
    "search-type": lambda c, t, i: c.get(f"/fhir/{t}"),
}
# A request exercising each system-level interaction (rest.interaction.code).
SYSTEM_EXERCISES: dict[str, Callable[[TestClient], Response]] = {
    "transaction": lambda c: c.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                                   "entry": []}, headers=FHIR_JSON),
    "batch": lambda c: c.post("/fhir", json={"resourceType": "Bundle", "type": "batch",
                                             "entry": []}, headers=FHIR_JSON),
    "search-system": lambda c: c.get("/fhir?_id=x"),
    "history-system": lambda c: c.get("/fhir/_history"),
}
PATCH_FORMATS = frozenset({JSON_PATCH})
FHIR_ACCEPT = {"Accept": "application/fhir+json"}
PNG_DATA = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
            "AAAABJRU5ErkJggg==")


# ----------------------------------------------------------------------- the statement


def test_metadata_is_a_capability_statement(client: TestClient) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.json()["resourceType"] == "CapabilityStatement"


def test_metadata_declares_fhir_4_0_1(client: TestClient) -> None:
    assert _statement(client)["fhirVersion"] == "4.0.1"


def test_metadata_format_includes_fhir_json(client: TestClient) -> None:
    assert "application/fhir+json" in _statement(client)["format"]


def test_metadata_names_software_and_version(client: TestClient) -> None:
    software = _statement(client)["software"]
    assert software["name"]
    assert software["version"]


def test_metadata_kind_is_instance(client: TestClient) -> None:
    """cpb-15: an instance statement carries ``implementation``."""
    statement = _statement(client)
    assert statement["kind"] == "instance"
    assert statement["implementation"]["description"]


def test_metadata_rest_mode_is_server(client: TestClient) -> None:
    assert _statement(client)["rest"][0]["mode"] == "server"


def test_declared_formats_are_served(client: TestClient) -> None:
    for declared in _statement(client)["format"]:
        response = client.get("/fhir/metadata", params={"_format": declared})
        assert response.status_code == 200, (declared, response.text)
        if "/" in declared:
            response = client.get("/fhir/metadata", headers={"Accept": declared})
            assert response.status_code == 200, (declared, response.text)


# ------------------------------------------------- declared -> served (truthfulness walk)


def test_declared_interactions_are_served(client: TestClient) -> None:
    failures = []
    for resource in _resources(_statement(client)):
        resource_type = resource["type"]
        for code in sorted(_declared(resource)):
            exercise = TYPE_EXERCISES.get(code)
            if exercise is None:
                failures.append(f"{resource_type} {code}: declared, no exercise in the test")
                continue
            response = exercise(client, resource_type, _create(client, resource_type))
            if not 200 <= response.status_code < 300:
                failures.append(f"{resource_type} {code}: {response.status_code} {response.text}")
    assert not failures, "\n".join(failures)


def test_declared_system_interactions_are_served(client: TestClient) -> None:
    failures = []
    for interaction in _statement(client)["rest"][0].get("interaction", []):
        exercise = SYSTEM_EXERCISES.get(interaction["code"])
        if exercise is None:
            failures.append(f"{interaction['code']}: declared, no exercise in the test")
            continue
        response = exercise(client)
        if not 200 <= response.status_code < 300:
            failures.append(f"{interaction['code']}: {response.status_code} {response.text}")
    assert not failures, "\n".join(failures)


def test_update_create_flag_matches_put_to_a_new_id(client: TestClient) -> None:
    for resource in _resources(_statement(client)):
        resource_type = resource["type"]
        body = SAMPLES[resource_type]() | {"id": "never-seen-1"}
        response = client.put(f"/fhir/{resource_type}/never-seen-1", json=body,
                              headers=FHIR_JSON)
        if resource.get("updateCreate"):
            assert response.status_code == 201, (resource_type, response.text)
        else:
            assert response.status_code >= 400, (resource_type, response.text)


def test_conditional_create_declared_means_if_none_exist_returns_the_match(
    client: TestClient,
) -> None:
    declaring = [r for r in _resources(_statement(client)) if r.get("conditionalCreate")]
    for resource in declaring:
        resource_type = resource["type"]
        existing = _create(client, resource_type)
        response = client.post(
            f"/fhir/{resource_type}", json=SAMPLES[resource_type](),
            headers=FHIR_JSON | {"If-None-Exist": SAMPLE_CRITERIA[resource_type]},
        )
        assert response.status_code == 200, (resource_type, response.text)
        assert response.json()["id"] == existing
        assert client.get(f"/fhir/{resource_type}/_history").json()["total"] == 1


def test_conditional_create_declared_means_no_match_creates(client: TestClient) -> None:
    declaring = [r for r in _resources(_statement(client)) if r.get("conditionalCreate")]
    for resource in declaring:
        resource_type = resource["type"]
        response = client.post(
            f"/fhir/{resource_type}", json=SAMPLES[resource_type](),
            headers=FHIR_JSON | {"If-None-Exist": "identifier=http://example.org/none|0"},
        )
        assert response.status_code == 201, (resource_type, response.text)


def test_read_history_declared_means_old_versions_are_readable(client: TestClient) -> None:
    for resource in _resources(_statement(client)):
        if not resource.get("readHistory"):
            continue
        resource_type = resource["type"]
        resource_id = _create(client, resource_type)
        first = _read_json(client, resource_type, resource_id)
        first.pop("data", None)  # history entries of a Binary carry no data
        assert _new_version(client, resource_type, resource_id).status_code == 200
        response = client.get(f"/fhir/{resource_type}/{resource_id}/_history/1")
        assert response.status_code == 200
        assert response.json() == first


def test_versioned_update_declared_means_stale_if_match_is_412(client: TestClient) -> None:
    for resource in _resources(_statement(client)):
        if resource.get("versioning") != "versioned-update":
            continue
        resource_type = resource["type"]
        resource_id = _create(client, resource_type)
        current = _read_json(client, resource_type, resource_id)
        response = client.put(f"/fhir/{resource_type}/{resource_id}", json=current,
                              headers=FHIR_JSON | {"If-Match": 'W/"7"'})
        assert response.status_code == 412, (resource_type, response.text)


def test_declared_search_params_answer_with_searchset_bundles(client: TestClient) -> None:
    failures = []
    for resource in _resources(_statement(client)):
        resource_type = resource["type"]
        resource_id = _create(client, resource_type)
        for param in resource.get("searchParam", []):
            name = param["name"]
            known = SEARCH_VALUES[resource_type].get(name)
            if name == "_id":
                known = resource_id
            value = known or SEARCH_TYPE_VALUES.get(param.get("type", ""), "x")
            response = client.get(f"/fhir/{resource_type}", params={name: value})
            if response.status_code != 200:
                failures.append(f"{resource_type}?{name}={value}: {response.status_code} "
                                f"{response.text}")
                continue
            bundle = response.json()
            if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "searchset":
                failures.append(f"{resource_type}?{name}={value}: not a searchset Bundle")
            elif known and resource_id not in {entry.get("resource", {}).get("id")
                                               for entry in bundle.get("entry", [])}:
                failures.append(f"{resource_type}?{name}={value}: does not find {resource_id}")
    assert not failures, "\n".join(failures)


def test_declared_patch_formats_are_accepted(client: TestClient) -> None:
    failures = []
    for patch_format in _statement(client).get("patchFormat", []):
        if patch_format not in PATCH_FORMATS:
            failures.append(f"{patch_format}: declared, no patch body in the test")
            continue
        for resource in _resources(_statement(client)):
            if "patch" not in _declared(resource):
                continue
            resource_type = resource["type"]
            resource_id = _create(client, resource_type)
            response = client.patch(f"/fhir/{resource_type}/{resource_id}",
                                    content=PATCHES[resource_type],
                                    headers={"Content-Type": patch_format})
            if not 200 <= response.status_code < 300:
                failures.append(f"{patch_format} on {resource_type}: {response.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("content_type", OTHER_PATCH_TYPES)
def test_undeclared_patch_format_is_415(client: TestClient, content_type: str) -> None:
    if content_type in _statement(client).get("patchFormat", []):
        pytest.skip(f"{content_type} is declared; test_declared_patch_formats_are_accepted")
    resource_id = _create(client, "Patient")
    response = _patch_gender(client, f"/fhir/Patient/{resource_id}", content_type)
    assert response.status_code == 415, response.text
    assert issue_codes(response.json()) == ["not-supported"]
    assert client.get(f"/fhir/Patient/{resource_id}").json()["gender"] == "female"


# ------------------------------------------------ served -> declared (the reverse walk)


def test_route_table_matches_the_fhir_router() -> None:
    """SERVED_ROUTES lists every route of fhir_server/http/routes.py (mounted under /fhir)."""
    routes = {(method, route.path) for route in fhir_routes()
              for method in route.methods or () if method != "HEAD"}
    assert routes == set(SERVED_ROUTES)


# Interactions a type refuses although the generic route table has them (405 answers).
REFUSED: dict[str, set[str]] = {
    "Binary": {"patch"},
    "Provenance": {"create", "update", "patch", "delete", "history-instance", "history-type"},
    "AuditEvent": {"create", "update", "patch", "delete", "history-instance", "history-type"},
    **{name: {"create", "update", "patch", "delete", "history-instance", "history-type",
              "vread"} for name in TERMINOLOGY}}


def test_every_served_interaction_is_declared(client: TestClient) -> None:
    served = {code for code in SERVED_ROUTES.values() if code is not None}
    for resource in _resources(_statement(client)):
        expected = served - REFUSED.get(resource["type"], set())
        assert expected <= _declared(resource), (resource["type"], expected - _declared(resource))


def test_refused_interactions_answer_405(client: TestClient) -> None:
    for resource_type, codes in REFUSED.items():
        for code in codes:
            response = TYPE_EXERCISES[code](client, resource_type, _create(client, resource_type))
            assert response.status_code == 405, (resource_type, code, response.text)
            assert issue_codes(response.json()) == ["not-supported"]


def test_undeclared_type_interactions_are_not_served(client: TestClient) -> None:
    failures = []
    for resource in _resources(_statement(client)):
        resource_type = resource["type"]
        for code in sorted(set(TYPE_EXERCISES) - _declared(resource)):
            response = TYPE_EXERCISES[code](client, resource_type, _create(client, resource_type))
            if 200 <= response.status_code < 300:
                failures.append(f"{resource_type} {code}: undeclared, answered "
                                f"{response.status_code}")
    assert not failures, "\n".join(failures)


def test_undeclared_system_interactions_are_not_served(client: TestClient) -> None:
    declared = {i["code"] for i in _statement(client)["rest"][0].get("interaction", [])}
    failures = []
    for code in sorted(set(SYSTEM_EXERCISES) - declared):
        response = SYSTEM_EXERCISES[code](client)
        if 200 <= response.status_code < 300 or response.status_code >= 500:
            failures.append(f"{code}: undeclared, answered {response.status_code}")
    assert not failures, "\n".join(failures)


def test_search_by_name_is_not_served_while_search_type_is_undeclared(
    client: TestClient,
) -> None:
    patient_resource = next(r for r in _resources(_statement(client)) if r["type"] == "Patient")
    if "search-type" in _declared(patient_resource):
        pytest.skip("search-type is declared; test_declared_interactions_are_served covers it")
    response = client.get("/fhir/Patient?name=x")
    assert not 200 <= response.status_code < 300
    assert issue_codes(response.json())


def test_undeclared_resource_type_read_is_404_operation_outcome(client: TestClient) -> None:
    declared = {r["type"] for r in _resources(_statement(client))}
    assert "Observation" not in declared
    response = client.get("/fhir/Observation/1")
    assert response.status_code == 404
    assert issue_codes(response.json()) == ["not-found"]


def test_undeclared_resource_type_create_is_404_operation_outcome(client: TestClient) -> None:
    response = client.post("/fhir/Observation",
                           json={"resourceType": "Observation", "status": "final",
                                 "code": {"text": "x"}},
                           headers=FHIR_JSON)
    assert response.status_code == 404
    assert issue_codes(response.json()) == ["not-found"]


def test_declared_search_params_are_exactly_the_supported_ones(client: TestClient) -> None:
    registry = {**client.app.state.services.search_registry,  # type: ignore[attr-defined]
                **{name: CATALOG_PARAMETERS for name in TERMINOLOGY}}
    statement = _resources(_statement(client))
    assert {resource["type"] for resource in statement} == set(registry)
    for resource in statement:
        declared = {param["name"]: param["type"] for param in resource["searchParam"]}
        assert declared == {name: p.type for name, p in registry[resource["type"]].items()}, \
            resource["type"]
        for param in resource["searchParam"]:
            assert param.get("documentation"), (resource["type"], param["name"])
