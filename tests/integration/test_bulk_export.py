"""Bulk Data export (``$export``, v2): kick-off, progress, the manifest and its NDJSON files
(what a search returns, Binaries with their bytes), ``_type``, ``_since``, the Patient level,
cancellation, the errors the IG names, and access: scopes, SSN masking, another subject's job,
the audit trail; a job taken over from a stopped runner resumes from its last file."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.settings import Settings
from storage.export_tables import bulk_export_files, bulk_export_jobs
from tests.conftest import empty_tables
from tests.factories import (
    FHIR_JSON,
    PDF_BYTES,
    binary,
    communication,
    communication_request,
    document_reference,
    issue_codes,
    patient,
)
from tests.s3_server import object_keys
from tests.tokens import TokenIssuer

ASYNC = {"Prefer": "respond-async"}
SSN = "http://hl7.org/fhir/sid/us-ssn"
BASE = "http://testserver"


def _local(url: str) -> str:
    return url.removeprefix(BASE)


def _kickoff(client: TestClient, query: str = "", *, path: str = "/fhir/$export",
             headers: dict[str, str] | None = None) -> str:
    response = client.get(path + query, headers=ASYNC | (headers or {}))
    assert response.status_code == 202, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    return _local(response.headers["Content-Location"])


def _finished(client: TestClient, status_url: str,
              headers: dict[str, str] | None = None) -> dict[str, Any]:
    for _ in range(400):
        response = client.get(status_url, headers=headers)
        if response.status_code != 202:
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("application/json")
            manifest: dict[str, Any] = response.json()
            return manifest
        time.sleep(0.025)
    raise AssertionError("the export did not finish")


def _lines(client: TestClient, url: str,
           headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = client.get(_local(url), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    return [orjson.loads(text) for text in response.content.splitlines()]


def _exported(client: TestClient, manifest: dict[str, Any],
              headers: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for output in manifest["output"]:
        lines = _lines(client, output["url"], headers)
        assert len(lines) == output["count"]
        assert {line["resourceType"] for line in lines} == {output["type"]}
        found.setdefault(output["type"], []).extend(lines)
    return found


def _searched(client: TestClient, kind: str,
              headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    bundle = client.get(f"/fhir/{kind}?_count=1000", headers=headers).json()
    return [entry["resource"] for entry in bundle.get("entry", [])]


def _by_id(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {resource["id"]: resource for resource in resources}


def _record(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Two patients with a document each (its PDF a Binary), messages, and things in no
    patient's compartment: a Practitioner's message, an unattached Binary."""
    headers = FHIR_JSON | (headers or {})
    made: dict[str, Any] = {}
    for name, ssn in (("p-1", "123-45-6789"), ("p-2", "987-65-4321")):
        assert client.put(f"/fhir/Patient/{name}", headers=headers, json=patient(
            id=name, identifier=[{"system": SSN, "value": ssn}])).status_code == 201
        made[name] = [
            client.post("/fhir/DocumentReference", headers=headers, json=document_reference(
                subject={"reference": f"Patient/{name}"})).json(),
            client.post("/fhir/Communication", headers=headers, json=communication(
                subject={"reference": f"Patient/{name}"},
                recipient=[{"reference": f"Patient/{name}"}])).json(),
            client.post("/fhir/CommunicationRequest", headers=headers, json=communication_request(
                status="draft", subject={"reference": f"Patient/{name}"},
                recipient=[{"reference": f"Patient/{name}"}])).json()]
    made["outside"] = [
        client.post("/fhir/Communication", headers=headers, json=communication(
            subject=None, recipient=[{"reference": "Practitioner/pr-1"}])).json(),
        client.post("/fhir/Binary", headers=headers, json=binary()).json()]
    return made


@contextmanager
def _gated(client: TestClient) -> Iterator[threading.Event]:
    """The runner of ``client``'s app waits before each page until the event is set."""
    runner = client.app.state.services.exports.runner  # type: ignore[attr-defined]
    gate = threading.Event()
    reading = runner.reader.page

    async def page(*args: Any, **kwargs: Any) -> Any:
        await asyncio.to_thread(gate.wait)
        return await reading(*args, **kwargs)

    runner.reader.page = page
    try:
        yield gate
    finally:
        gate.set()
        runner.reader.page = reading


# ----------------------------------------------------------------- the flow


def test_kickoff_progress_and_manifest(client: TestClient) -> None:
    _record(client)
    with _gated(client) as gate:
        status_url = _kickoff(client, "?_outputFormat=application/fhir%2Bndjson")
        assert status_url.startswith("/fhir/$export-status/")
        waiting = client.get(status_url)
        assert waiting.status_code == 202
        assert waiting.headers["X-Progress"]
        assert int(waiting.headers["Retry-After"]) >= 1
        gate.set()
        manifest = _finished(client, status_url)
    assert manifest["request"] == \
        f"{BASE}/fhir/$export?_outputFormat=application/fhir%2Bndjson"
    assert manifest["requiresAccessToken"] is False
    assert manifest["transactionTime"].endswith("Z")
    assert manifest["error"] == []
    types = [output["type"] for output in manifest["output"]]
    assert types == ["Patient", "DocumentReference", "Communication", "CommunicationRequest",
                     "Binary"]
    assert all(output["url"].startswith(f"{BASE}/fhir/$export-file/")
               for output in manifest["output"])


def test_files_hold_what_a_search_returns(client: TestClient) -> None:
    _record(client)
    exported = _exported(client, _finished(client, _kickoff(client)))
    for kind in ("Patient", "DocumentReference", "Communication", "CommunicationRequest"):
        assert _by_id(exported[kind]) == _by_id(_searched(client, kind)), kind
    binaries = _by_id(exported["Binary"])
    for resource in binaries.values():  # searches leave the bytes out, the export has them
        assert base64.b64decode(resource.pop("data")) == PDF_BYTES
    assert binaries == _by_id(_searched(client, "Binary"))
    ssns = {identifier["value"] for resource in exported["Patient"]
            for identifier in resource["identifier"] if identifier["system"] == SSN}
    assert ssns == {"123-45-6789", "987-65-4321"}  # no authorisation: nothing masked


def test_files_are_split_and_sealed_at_rest(settings: Settings, engine: Engine) -> None:
    empty_tables(engine)
    small = settings.model_copy(update={"export_file_resources": 2, "export_page_size": 1})
    with TestClient(create_app(small, migrate=False)) as client:
        for number in range(5):
            client.put(f"/fhir/Patient/p-{number}", headers=FHIR_JSON, json=patient(
                id=f"p-{number}", identifier=[{"system": SSN, "value": "123-45-6789"}]))
        manifest = _finished(client, _kickoff(client, "?_type=Patient"))
        assert [output["count"] for output in manifest["output"]] == [2, 2, 1]
        assert [output["url"].rsplit("/", 1)[1] for output in manifest["output"]] == \
            ["Patient-1.ndjson", "Patient-2.ndjson", "Patient-3.ndjson"]
        exported = _exported(client, manifest)["Patient"]
        assert sorted(resource["id"] for resource in exported) == [f"p-{n}" for n in range(5)]
    stored = [path.read_bytes() for path in Path(small.data_dir, "blobs").rglob("*")
              if path.is_file()]
    assert stored and not any(b"123-45-6789" in data or b"Rivera" in data for data in stored)


def test_type_and_since_narrow_the_export(client: TestClient) -> None:
    made = _record(client)
    manifest = _finished(client, _kickoff(client, "?_type=Communication,Patient"))
    assert [output["type"] for output in manifest["output"]] == ["Patient", "Communication"]
    moment = made["outside"][-1]["meta"]["lastUpdated"]  # the last one written
    time.sleep(0.01)
    client.put("/fhir/Patient/p-1", headers=FHIR_JSON, json=patient(id="p-1", gender="other"))
    since = _exported(client, _finished(client, _kickoff(client, f"?_since={moment}")))
    assert {kind: [resource["id"] for resource in found] for kind, found in since.items()} == \
        {"Patient": ["p-1"]}


def test_patient_level_exports_the_compartments(client: TestClient) -> None:
    made = _record(client)
    manifest = _finished(client, _kickoff(client, path="/fhir/Patient/$export"))
    assert manifest["request"] == f"{BASE}/fhir/Patient/$export"
    exported = {kind: {resource["id"] for resource in found}
                for kind, found in _exported(client, manifest).items()}
    outside = {resource["id"] for resource in made["outside"]}
    assert exported["Communication"] == {made[name][1]["id"] for name in ("p-1", "p-2")}
    assert not outside & exported["Binary"]
    attached = {resource["content"][0]["attachment"]["url"].split("/")[-1]
                for name in ("p-1", "p-2") for resource in made[name][:1]}
    assert exported["Binary"] == attached
    assert exported["Patient"] == {"p-1", "p-2"}


# ------------------------------------------------------------- cancellation


def _blob_files(settings: Settings) -> set[Path]:
    return {path for path in Path(settings.data_dir, "blobs").rglob("*")
            if path.is_file() and ".staging" not in path.parts}


def test_delete_of_a_finished_export_removes_its_files(client: TestClient,
                                                       settings: Settings) -> None:
    client.put("/fhir/Patient/p-1", headers=FHIR_JSON, json=patient(id="p-1"))
    status_url = _kickoff(client)
    manifest = _finished(client, status_url)
    assert len(_blob_files(settings)) == 1
    cancelled = client.delete(status_url)
    assert cancelled.status_code == 202
    assert client.get(status_url).status_code == 404
    assert client.get(_local(manifest["output"][0]["url"])).status_code == 404
    assert _blob_files(settings) == set()
    assert client.delete(status_url).status_code == 404


def test_delete_while_running_stops_the_export(client: TestClient, settings: Settings,
                                               engine: Engine) -> None:
    _record(client)
    held = _blob_files(settings)
    with _gated(client) as gate:
        status_url = _kickoff(client)
        assert client.delete(status_url).status_code == 202
        assert client.get(status_url).status_code == 404
        gate.set()
        for _ in range(200):
            with engine.connect() as connection:
                if connection.execute(select(bulk_export_jobs)).first() is None:
                    break
            time.sleep(0.025)
    with engine.connect() as connection:
        assert connection.execute(select(bulk_export_jobs)).first() is None
        assert connection.execute(select(bulk_export_files)).first() is None
    assert _blob_files(settings) == held


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(("query", "headers", "named"), [
    ("", {"Prefer": "return=minimal"}, "respond-async"),
    ("", {}, "respond-async"),
    ("?_outputFormat=text/csv", ASYNC, "text/csv"),
    ("?_type=Observation", ASYNC, "Observation"),
    ("?_type=AuditEvent", ASYNC, "AuditEvent"),
    ("?_since=yesterday", ASYNC, "yesterday"),
    ("?_typeFilter=Patient%3Fgender%3Dfemale", ASYNC, "_typeFilter"),
    ("?_elements=id", ASYNC, "_elements"),
    ("?color=red", ASYNC, "color"),
])
def test_bad_kickoffs_are_400_naming_the_fault(client: TestClient, query: str,
                                               headers: dict[str, str], named: str) -> None:
    response = client.get("/fhir/$export" + query, headers=headers)
    assert response.status_code == 400, response.text
    assert issue_codes(response.json()) == ["invalid"]
    assert named in response.json()["issue"][0]["diagnostics"]


def test_lenient_handling_ignores_unsupported_parameters(client: TestClient) -> None:
    response = client.get("/fhir/Patient/$export?_typeFilter=Patient%3Factive%3Dtrue",
                          headers={"Prefer": "respond-async, handling=lenient"})
    assert response.status_code == 202, response.text
    assert "_typeFilter" in response.json()["issue"][0]["diagnostics"]
    _finished(client, _local(response.headers["Content-Location"]))


def test_unknown_jobs_are_404(client: TestClient) -> None:
    for method in ("GET", "DELETE"):
        response = client.request(method, "/fhir/$export-status/no-such-job")
        assert response.status_code == 404
        assert issue_codes(response.json()) == ["not-found"]
    assert client.get("/fhir/$export-file/no-such-job/Patient-1.ndjson").status_code == 404


# ------------------------------------------------------------------ access


def test_scopes_decide_what_is_exported(secured_client: TestClient,
                                        token_issuer: TokenIssuer) -> None:
    writer = token_issuer.headers("user/*.cruds")
    _record(secured_client, writer)
    reader = token_issuer.headers("user/Patient.rs user/Communication.rs", subject="analyst")
    refused = secured_client.get("/fhir/$export?_type=Patient,Binary",
                                 headers=ASYNC | reader)
    assert refused.status_code == 403
    assert issue_codes(refused.json()) == ["forbidden"]
    patient_scoped = token_issuer.headers("patient/*.rs", patient="p-1")
    assert secured_client.get("/fhir/Patient/$export", headers=ASYNC | patient_scoped
                              ).status_code == 403
    manifest = _finished(secured_client, _kickoff(secured_client, headers=reader), reader)
    assert manifest["requiresAccessToken"] is True
    assert [output["type"] for output in manifest["output"]] == ["Patient", "Communication"]
    [left_out] = manifest["error"]
    outcome = _lines(secured_client, left_out["url"], reader)[0]
    assert "DocumentReference" in outcome["issue"][0]["diagnostics"]
    ssns = {identifier["value"] for resource in _exported(secured_client, manifest, reader)[
        "Patient"] for identifier in resource["identifier"] if identifier["system"] == SSN}
    assert ssns == {"***-**-6789", "***-**-4321"}
    revealing = token_issuer.headers("user/Patient.rs user/Patient.$reveal-ssn")
    revealed = _exported(secured_client, _finished(
        secured_client, _kickoff(secured_client, "?_type=Patient", headers=revealing),
        revealing), revealing)["Patient"]
    assert {identifier["value"] for resource in revealed for identifier in
            resource["identifier"] if identifier["system"] == SSN} == \
        {"123-45-6789", "987-65-4321"}


def test_a_job_answers_only_its_subject(secured_client: TestClient,
                                        token_issuer: TokenIssuer) -> None:
    owner = token_issuer.headers("user/Patient.rs", subject="owner")
    secured_client.put("/fhir/Patient/p-1", headers=FHIR_JSON | token_issuer.headers(
        "user/Patient.cu"), json=patient(id="p-1"))
    status_url = _kickoff(secured_client, "?_type=Patient", headers=owner)
    manifest = _finished(secured_client, status_url, owner)
    file_url = _local(manifest["output"][0]["url"])
    other = token_issuer.headers("user/Patient.rs", subject="someone-else")
    assert secured_client.get(status_url, headers=other).status_code == 404
    assert secured_client.get(file_url, headers=other).status_code == 404
    assert secured_client.delete(status_url, headers=other).status_code == 404
    assert secured_client.get(file_url).status_code == 401
    narrowed = token_issuer.headers("user/Communication.rs", subject="owner")
    assert secured_client.get(file_url, headers=narrowed).status_code == 403
    assert secured_client.get(file_url, headers=owner).status_code == 200
    events = secured_client.get("/fhir/AuditEvent?_count=100&action=E", headers=
                                token_issuer.headers("user/AuditEvent.rs")).json()["entry"]
    seen = [(event["resource"]["subtype"][0]["code"], event["resource"]["outcome"],
             event["resource"]["agent"][0]["altId"]) for event in events]
    assert ("$export", "0", "owner") in seen
    assert ("$export-file", "0", "owner") in seen
    assert ("$export-file", "4", "someone-else") in seen
    assert ("$export-cancel", "4", "someone-else") in seen
    assert ("$export-poll-status", "4", "someone-else") in seen


# ------------------------------------------------------------------ resume


def test_a_job_taken_over_resumes_from_its_last_file(settings: Settings, engine: Engine) -> None:
    empty_tables(engine)
    small = settings.model_copy(update={"export_file_resources": 2, "export_page_size": 2})
    with TestClient(create_app(small, migrate=False)) as first:
        for number in range(5):
            first.put(f"/fhir/Patient/p-{number}", headers=FHIR_JSON,
                      json=patient(id=f"p-{number}"))
        runner = first.app.state.services.exports.runner  # type: ignore[attr-defined]
        reading = runner.reader.page
        calls = 0
        gate = threading.Event()

        async def page(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls > 1:  # the first file is written, then this runner stalls
                await asyncio.to_thread(gate.wait)
            return await reading(*args, **kwargs)

        runner.reader.page = page
        try:
            status_url = _kickoff(first, "?_type=Patient")
            for _ in range(200):
                with engine.connect() as connection:
                    if connection.execute(select(bulk_export_files)).first() is not None:
                        break
                time.sleep(0.025)
            with engine.begin() as connection:  # as if its process had died
                connection.execute(update(bulk_export_jobs).values(lease_until=None))
            with TestClient(create_app(small, migrate=False)) as second:
                manifest = _finished(second, status_url)
                exported = _exported(second, manifest)["Patient"]
        finally:
            gate.set()
            runner.reader.page = reading
    assert [output["count"] for output in manifest["output"]] == [2, 2, 1]
    assert sorted(resource["id"] for resource in exported) == [f"p-{n}" for n in range(5)]


# ------------------------------------------------------------------ S3


def test_s3_manifest_hands_out_presigned_urls(settings: Settings, engine: Engine,
                                              s3_bucket: str) -> None:
    empty_tables(engine)
    on_s3 = settings.model_copy(update={"blob_url": f"s3://{s3_bucket}/prm"})
    with TestClient(create_app(on_s3, migrate=False)) as client:
        client.put("/fhir/Patient/p-1", headers=FHIR_JSON, json=patient(id="p-1"))
        status_url = _kickoff(client, "?_type=Patient")
        manifest = _finished(client, status_url)
        [output] = manifest["output"]
        assert not output["url"].startswith(BASE)
        fetched = httpx.get(output["url"])
        assert fetched.status_code == 200
        assert fetched.headers["content-type"] == "application/fhir+ndjson"
        assert [orjson.loads(text)["id"] for text in fetched.content.splitlines()] == ["p-1"]
        assert object_keys(s3_bucket) != []
        assert client.delete(status_url).status_code == 202
        assert object_keys(s3_bucket) == []


def test_capability_statement_declares_the_operations(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    assert "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data" in \
        statement["instantiates"]
    rest = statement["rest"][0]
    assert {"export": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}.items() <= {
        item["name"]: item["definition"] for item in rest["operation"]}.items()
    [patient_resource] = [item for item in rest["resource"] if item["type"] == "Patient"]
    assert {item["name"]: item["definition"] for item in patient_resource["operation"]}[
        "export"] == "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
    for path in ("/fhir/$export", "/fhir/Patient/$export"):
        assert client.get(path, headers=ASYNC).status_code == 202


def test_openapi_describes_the_export_answers(client: TestClient) -> None:
    paths = client.get("/fhir/openapi.json").json()["paths"]
    for path in ("/fhir/$export", "/fhir/Patient/$export"):
        assert "Content-Location" in paths[path]["get"]["responses"]["202"]["headers"]
    status = paths["/fhir/$export-status/{job_id}"]
    assert {"200", "202"} <= set(status["get"]["responses"])
    assert "202" in status["delete"]["responses"]
    assert "application/fhir+ndjson" in paths["/fhir/$export-file/{job_id}/{file_name}"][
        "get"]["responses"]["200"]["content"]


# ------------------------------------------------------------- removal after the keep time


@contextmanager
def _kept_for_no_time(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A server that keeps finished exports for no time at all."""
    empty_tables(engine)
    kept = settings.model_copy(update={"export_keep_seconds": 0})
    with TestClient(create_app(kept, migrate=False)) as test_client:
        yield test_client


def _wake_runner(client: TestClient) -> None:
    """Another export: its kick-off wakes the runner, which runs a pass and then this job."""
    _finished(client, _kickoff(client, "?_type=Patient"))


def test_a_finished_export_past_its_keep_time_is_removed_by_a_pass(
        settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fhir_server.bulk_export.runner.REMOVAL_SECONDS", 0.0)
    with _kept_for_no_time(settings, engine) as client:
        client.put("/fhir/Patient/p-1", headers=FHIR_JSON, json=patient(id="p-1"))
        status_url = _kickoff(client)
        _finished(client, status_url)
        _wake_runner(client)
        for _ in range(200):
            if client.get(status_url).status_code == 404:
                break
            time.sleep(0.025)
        assert client.get(status_url).status_code == 404


def test_passes_look_for_removals_at_most_once_a_minute(settings: Settings,
                                                        engine: Engine) -> None:
    """Woken passes in between leave an expired export alone until the minute is up (an idle
    server polling for removals every few seconds spent most of its CPU on it)."""
    with _kept_for_no_time(settings, engine) as client:
        client.put("/fhir/Patient/p-1", headers=FHIR_JSON, json=patient(id="p-1"))
        status_url = _kickoff(client)
        _finished(client, status_url)
        for _ in range(3):
            _wake_runner(client)
        assert client.get(status_url).status_code == 200
