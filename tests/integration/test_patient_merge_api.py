"""``Patient/$merge`` and ``$unmerge`` over HTTP on SQLite and PostgreSQL: what moves, what
the pair looks like after, preview, the errors, concurrency, undo and its conflicts, and a
property test that merge then undo leaves every resource as it was."""

from __future__ import annotations

import asyncio
import base64
import contextvars
import re
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine

from fhir_server.operations.merge import parse_merge
from storage.tables import patient_merges
from tests.conftest import empty_tables
from tests.factories import FHIR_JSON, PDF_BYTES

SSN = "http://hl7.org/fhir/sid/us-ssn"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _put(client: TestClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource,
                          headers=FHIR_JSON)
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def _read(client: TestClient, path: str) -> dict[str, Any]:
    response = client.get(f"/fhir/{path}", headers={"Accept": "application/fhir+json"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _patient(resource_id: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": resource_id,
            "name": [{"family": "Rivera", "given": ["Ana"]}], "birthDate": "1984-03-09",
            **extra}


def _document(resource_id: str, subject: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "DocumentReference", "id": resource_id, "status": "current",
            "subject": {"reference": subject},
            "content": [{"attachment": {"contentType": "application/pdf",
                                        "data": base64.b64encode(PDF_BYTES).decode()}}],
            **extra}


def _parameters(**inputs: Any) -> dict[str, Any]:
    parameters = []
    for name, value in inputs.items():
        name = name.replace("_", "-")
        if name in ("source-patient", "target-patient"):
            parameters.append({"name": name, "valueReference": {"reference": value}})
        elif name.endswith("identifier"):
            parameters.append({"name": name, "valueIdentifier": value})
        elif name == "preview":
            parameters.append({"name": name, "valueBoolean": value})
        else:
            parameters.append({"name": name, "resource": value})
    return {"resourceType": "Parameters", "parameter": parameters}


def _merge(client: TestClient, expected: int = 200, **inputs: Any) -> dict[str, Any]:
    response = client.post("/fhir/Patient/$merge", json=_parameters(**inputs), headers=FHIR_JSON)
    assert response.status_code == expected, response.text
    body: dict[str, Any] = response.json()
    return body


def _unmerge(client: TestClient, expected: int = 200, **inputs: Any) -> dict[str, Any]:
    parameters = [{"name": "source-patient",
                   "valueReference": {"reference": f"Patient/{inputs['source']}"}}] \
        if "source" in inputs else [{"name": "merge", "valueString": inputs["merge"]}]
    response = client.post("/fhir/Patient/$unmerge", headers=FHIR_JSON,
                           json={"resourceType": "Parameters", "parameter": parameters})
    assert response.status_code == expected, response.text
    body: dict[str, Any] = response.json()
    return body


def _scene(client: TestClient) -> None:
    _put(client, _patient("src", identifier=[{"system": "urn:ehr", "value": "E1"},
                                              {"system": SSN, "value": "123-45-6789"}]))
    _put(client, _patient("tgt", identifier=[{"system": "urn:ehr", "value": "E2"}]))
    _put(client, _patient("kin", name=[{"family": "Rivera", "given": ["Carlos"]}],
                          link=[{"other": {"reference": "Patient/src"}, "type": "seealso"}]))
    _put(client, _document("doc", "Patient/src", author=[{"reference": "Patient/src"}],
                           context={"related": [{"reference": "Patient/src"}]}))
    _put(client, _document("other-doc", "Patient/kin"))
    response = client.post("/fhir/Binary", content=PDF_BYTES,
                           headers={"Content-Type": "application/pdf",
                                    "X-Security-Context": "Patient/src"})
    assert response.status_code == 201


def _parameter(body: dict[str, Any], name: str) -> Any:
    return next(p for p in body["parameter"] if p["name"] == name)


def test_merge_moves_every_reference_and_retires_the_source(client: TestClient) -> None:
    _scene(client)
    answer = _merge(client, source_patient="Patient/src", target_patient="Patient/tgt")
    assert [p["name"] for p in answer["parameter"]] == ["input", "outcome", "result", "merge"]
    outcome = _parameter(answer, "outcome")["resource"]["issue"][0]["diagnostics"]
    assert "Binary 1, DocumentReference 1, Patient 1" in outcome
    document = _read(client, "DocumentReference/doc")
    assert document["subject"] == {"reference": "Patient/tgt"}
    assert document["author"] == [{"reference": "Patient/tgt"}]
    assert document["context"]["related"] == [{"reference": "Patient/tgt"}]
    assert document["meta"]["versionId"] == "2"
    assert _read(client, "DocumentReference/other-doc")["meta"]["versionId"] == "1"
    assert _read(client, "Patient/kin")["link"] == [{"other": {"reference": "Patient/tgt"},
                                                     "type": "seealso"}]
    contexts = [entry["resource"].get("securityContext")
                for entry in client.get("/fhir/Binary").json()["entry"]]
    assert {"reference": "Patient/tgt"} in contexts
    assert {"reference": "Patient/src"} not in contexts
    source = _read(client, "Patient/src")
    assert source["active"] is False
    assert {"other": {"reference": "Patient/tgt"}, "type": "replaced-by"} in source["link"]
    target = _read(client, "Patient/tgt")
    assert _parameter(answer, "result")["resource"]["link"] == target["link"]
    assert {"other": {"reference": "Patient/src"}, "type": "replaces"} in target["link"]
    old = [i for i in target["identifier"] if i.get("use") == "old"]
    assert {"system": "urn:ehr", "value": "E1"} in [
        {k: v for k, v in i.items() if k in ("system", "value")} for i in old]
    assert any(i["system"] == SSN and i["value"] == "123-45-6789" for i in old)
    history = client.get("/fhir/DocumentReference/doc/_history").json()
    assert history["total"] == 2


def test_preview_reports_and_changes_nothing(client: TestClient) -> None:
    _scene(client)
    answer = _merge(client, source_patient="Patient/src", target_patient="Patient/tgt",
                    preview=True)
    assert [p["name"] for p in answer["parameter"]] == ["input", "outcome", "result"]
    text = _parameter(answer, "outcome")["resource"]["issue"][0]["diagnostics"]
    assert text.startswith("Preview") and "DocumentReference 1" in text
    assert {"other": {"reference": "Patient/src"}, "type": "replaces"} in \
        _parameter(answer, "result")["resource"]["link"]
    for path in ("Patient/src", "Patient/tgt", "Patient/kin", "DocumentReference/doc"):
        assert _read(client, path)["meta"]["versionId"] == "1", path


def test_identifiers_resolve_the_pair(client: TestClient) -> None:
    _scene(client)
    _merge(client, source_patient_identifier={"system": SSN, "value": "123-45-6789"},
           target_patient_identifier={"system": "urn:ehr", "value": "E2"})
    assert _read(client, "Patient/src")["active"] is False


@pytest.mark.parametrize(("inputs", "expected", "words"), [
    ({"source_patient": "Patient/src", "target_patient": "Patient/src"}, 422, "same patient"),
    ({"source_patient": "Patient/nope", "target_patient": "Patient/tgt"}, 422, "does not exist"),
    ({"source_patient_identifier": {"system": "urn:ehr", "value": "none"},
      "target_patient": "Patient/tgt"}, 422, "matches no patient"),
    ({"source_patient_identifier": {"system": "urn:shared", "value": "S"},
      "target_patient": "Patient/tgt"}, 422, "several"),
    ({"source_patient": "Patient/src", "source_patient_identifier":
        {"system": "urn:ehr", "value": "E2"}, "target_patient": "Patient/tgt"}, 422, "different"),
    ({"source_patient": "Patient/src", "target_patient": "Patient/tgt",
      "result_patient": _patient("kin")}, 422, "target's id"),
    ({"source_patient": "Patient/src", "target_patient": "Patient/tgt",
      "result_patient": _patient("tgt")}, 422, "replaces"),
    ({"target_patient": "Patient/tgt"}, 400, "source-patient"),
])
def test_errors_change_nothing(client: TestClient, inputs: dict[str, Any], expected: int,
                               words: str) -> None:
    _scene(client)
    for resource_id in ("s1", "s2"):
        _put(client, _patient(resource_id, identifier=[{"system": "urn:shared", "value": "S"}]))
    body = _merge(client, expected, **inputs)
    assert body["resourceType"] == "OperationOutcome"
    assert words in body["issue"][0]["diagnostics"]
    for path in ("Patient/src", "Patient/tgt", "DocumentReference/doc"):
        assert _read(client, path)["meta"]["versionId"] == "1"


def test_result_patient_is_taken_as_the_target(client: TestClient) -> None:
    _scene(client)
    result = _patient("tgt", gender="female",
                      link=[{"other": {"reference": "Patient/src"}, "type": "replaces"}])
    _merge(client, source_patient="Patient/src", target_patient="Patient/tgt",
           result_patient=result)
    target = _read(client, "Patient/tgt")
    assert target["gender"] == "female"
    assert not [i for i in target.get("identifier", []) if i.get("use") == "old"]


def test_merging_a_merged_source_again_is_refused(client: TestClient) -> None:
    _scene(client)
    _merge(client, source_patient="Patient/src", target_patient="Patient/tgt")
    body = _merge(client, 422, source_patient="Patient/src", target_patient="Patient/kin")
    assert "already merged into Patient/tgt" in body["issue"][0]["diagnostics"]


def test_concurrent_merges_of_one_source_one_wins(client: TestClient) -> None:
    _scene(client)
    app = client.app

    async def both() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await asyncio.gather(*(
                http.post("/fhir/Patient/$merge", headers=FHIR_JSON, json=_parameters(
                    source_patient="Patient/src", target_patient=f"Patient/{target}"))
                for target in ("tgt", "kin")))

    responses = client.portal.call(both)  # type: ignore[union-attr]
    statuses = sorted(response.status_code for response in responses)
    assert statuses[0] == 200 and statuses[1] in (409, 422), [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200)
    target_id = _parameter(winner.json(), "result")["resource"]["id"]
    source = _read(client, "Patient/src")
    assert [link["other"]["reference"] for link in source["link"]
            if link["type"] == "replaced-by"] == [f"Patient/{target_id}"]
    assert _read(client, "DocumentReference/doc")["subject"]["reference"] == f"Patient/{target_id}"


def test_after_a_merge_search_match_and_writes_leave_the_source_alone(client: TestClient) -> None:
    _scene(client)
    _merge(client, source_patient="Patient/src", target_patient="Patient/tgt")
    ids = {e["resource"]["id"] for e in client.get("/fhir/Patient?family=rivera").json()["entry"]}
    assert "src" not in ids and "tgt" in ids
    merged = client.get("/fhir/Patient?family=rivera&merged=true").json()["entry"]
    assert [e["resource"]["id"] for e in merged] == ["src"]
    match = client.get("/fhir/Patient/tgt/$match").json()
    assert "src" not in {e["resource"]["id"] for e in match.get("entry", [])}
    refused = client.post("/fhir/DocumentReference", json=_document("x", "Patient/src"),
                          headers=FHIR_JSON)
    assert refused.status_code == 422
    assert "merged into Patient/tgt" in refused.json()["issue"][0]["diagnostics"]
    binary = client.post("/fhir/Binary", content=PDF_BYTES, headers={
        "Content-Type": "application/pdf", "X-Security-Context": "Patient/src"})
    assert binary.status_code == 422
    linked = client.put("/fhir/Patient/new", headers=FHIR_JSON, json=_patient(
        "new", link=[{"other": {"reference": "Patient/src"}, "type": "seealso"}]))
    assert linked.status_code == 422
    target = _read(client, "Patient/tgt")
    assert client.put("/fhir/Patient/tgt", json=target, headers=FHIR_JSON).status_code == 200


def test_unmerge_restores_everything(client: TestClient) -> None:
    _scene(client)
    before = {path: _read(client, path) for path in
              ("Patient/src", "Patient/tgt", "Patient/kin", "DocumentReference/doc")}
    answer = _merge(client, source_patient="Patient/src", target_patient="Patient/tgt")
    _put(client, _document("unrelated", "Patient/kin"))  # a later edit elsewhere
    merge_id = _parameter(answer, "merge")["valueString"]
    _unmerge(client, merge=merge_id)
    for path, resource in before.items():
        now = _read(client, path)
        assert {k: v for k, v in now.items() if k != "meta"} == \
            {k: v for k, v in resource.items() if k != "meta"}, path
    assert "already undone" in _unmerge(client, 409, merge=merge_id)["issue"][0]["diagnostics"]
    _unmerge(client, 404, source="src")  # no merge of that source is left to undo
    ids = {e["resource"]["id"] for e in client.get("/fhir/Patient?family=rivera").json()["entry"]}
    assert "src" in ids


def test_unmerge_refuses_when_a_moved_reference_was_edited(client: TestClient) -> None:
    _scene(client)
    _merge(client, source_patient="Patient/src", target_patient="Patient/tgt")
    document = _read(client, "DocumentReference/doc")
    _put(client, document | {"subject": {"reference": "Patient/kin"}})
    body = _unmerge(client, 409, source="src")
    assert "DocumentReference/doc at subject/reference" in body["issue"][0]["diagnostics"]
    assert _read(client, "Patient/src")["active"] is False  # nothing changed


REFERRING_FIELDS = st.lists(st.sampled_from(["subject", "author", "related", "kin-link"]),
                            min_size=0, max_size=4, unique=True)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=REFERRING_FIELDS, with_result=st.booleans())
def test_merge_then_undo_leaves_every_resource_as_it_was(
        client: TestClient, engine: Engine, fields: list[str], with_result: bool) -> None:
    empty_tables(engine)  # a clean slate per example
    _put(client, _patient("src", identifier=[{"system": "urn:ehr", "value": "E1"}]))
    _put(client, _patient("tgt"))
    extra: dict[str, Any] = {}
    if "author" in fields:
        extra["author"] = [{"reference": "Patient/src"}]
    if "related" in fields:
        extra["context"] = {"related": [{"reference": "Patient/src"}]}
    subject = "Patient/src" if "subject" in fields else "Patient/tgt"
    _put(client, _document("doc", subject, **extra))
    kin_links = [{"other": {"reference": "Patient/src"}, "type": "seealso"}] \
        if "kin-link" in fields else None
    _put(client, _patient("kin", **({"link": kin_links} if kin_links else {})))
    paths = ("Patient/src", "Patient/tgt", "Patient/kin", "DocumentReference/doc")
    before = {path: _read(client, path) for path in paths}
    inputs: dict[str, Any] = {"source_patient": "Patient/src", "target_patient": "Patient/tgt"}
    if with_result:
        inputs["result_patient"] = _patient("tgt", link=[{"other": {"reference": "Patient/src"},
                                                          "type": "replaces"}])
    _merge(client, **inputs)
    _unmerge(client, source="src")
    for path in paths:
        now = _read(client, path)
        assert {k: v for k, v in now.items() if k != "meta"} == \
            {k: v for k, v in before[path].items() if k != "meta"}, path


def test_each_merge_and_undo_is_a_provenance(client: TestClient) -> None:
    _scene(client)
    answer = _merge(client, source_patient="Patient/src", target_patient="Patient/tgt")
    merge_id = _parameter(answer, "merge")["valueString"]
    provenance = _read(client, f"Provenance/{merge_id}")
    targets = [t["reference"] for t in provenance["target"]]
    assert targets[:2] == ["Patient/src/_history/2", "Patient/tgt/_history/2"]
    assert "DocumentReference/doc/_history/2" in targets
    assert provenance["activity"]["coding"][0]["code"] == "merge"
    assert provenance["entity"] == [{"role": "revision",
                                     "what": {"reference": "Patient/src/_history/1"}}]
    assert provenance["agent"][0]["who"]["display"].startswith("client ")
    found = client.get("/fhir/Provenance?target=Patient/src").json()
    assert [e["resource"]["id"] for e in found["entry"]] == [merge_id]
    _unmerge(client, merge=merge_id)
    undo = _read(client, f"Provenance/{merge_id}-undo")
    assert undo["activity"]["coding"][0]["code"] == "unmerge"
    assert "Patient/src/_history/3" in [t["reference"] for t in undo["target"]]
    found = client.get("/fhir/Provenance?patient=Patient/tgt").json()
    assert {e["resource"]["id"] for e in found["entry"]} == {merge_id, f"{merge_id}-undo"}
    assert client.delete(f"/fhir/Provenance/{merge_id}").status_code == 405
    assert client.get("/fhir/Provenance/unknown").status_code == 404


def test_a_merge_overtaken_between_plan_and_write_is_409(client: TestClient,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two merges of one source: the second plans, the first commits meanwhile, the second's
    write then finds the source moved on and answers 409; nothing of it is written. (On SQLite
    a merge holds the one write lock from its plan to its write, with its AuditEvent, so no
    other merge can overtake it there.)"""
    if client.app.state.services.settings.is_sqlite:  # type: ignore[attr-defined]
        pytest.skip("SQLite serialises merges: one cannot overtake another")
    _scene(client)
    services = client.app.state.services  # type: ignore[attr-defined]
    merger = services.merger
    original_prepare = merger._prepare
    raced = {"done": False}

    async def plan_then_lose_the_race(*args: Any, **kwargs: Any) -> Any:
        changes = await original_prepare(*args, **kwargs)
        if not raced["done"]:
            raced["done"] = True
            other_client = contextvars.Context()  # another request: not in this one's unit
            await asyncio.get_running_loop().create_task(merger.merge(parse_merge(
                _parameters(source_patient="Patient/src", target_patient="Patient/kin"))),
                context=other_client)
        return changes

    monkeypatch.setattr(merger, "_prepare", plan_then_lose_the_race)
    body = _merge(client, 409, source_patient="Patient/src", target_patient="Patient/tgt")
    assert body["resourceType"] == "OperationOutcome"
    assert _read(client, "DocumentReference/doc")["subject"] == {"reference": "Patient/kin"}
    assert _read(client, "Patient/tgt")["meta"]["versionId"] == "1"


def test_the_merge_record_keeps_no_ssn_in_clear(client: TestClient, engine: Engine) -> None:
    _scene(client)
    _merge(client, source_patient="Patient/src", target_patient="Patient/tgt")
    with engine.connect() as connection:
        details = [row[0] for row in connection.execute(select(patient_merges.c.detail))]
    # Ids in the record are random UUIDs, whose hex may hold "6789" by chance: left out.
    without_uuids = [_UUID.sub("<uuid>", detail) for detail in details]
    assert details and not any("6789" in detail or "123-45" in detail for detail in without_uuids)
    _unmerge(client, source="src")
    target = _read(client, "Patient/tgt")
    assert not [i for i in target.get("identifier", []) if i.get("use") == "old"]
    assert any(i.get("value") == "123-45-6789" for i in _read(client, "Patient/src")["identifier"])
