"""End to end: real FHIR client libraries against the served process, on SQLite and PostgreSQL.

fhirpy (async), fhirclient (SMART on FHIR's Python client, whose R4 models refuse anything
off-spec) and fhir-kit-client (npm, run by Node.js from ``tests/e2e/js``) each create, read,
update, delete, page through searches, post Bundles and call operations, the way their
documentation shows, without workarounds. One server per backend serves the whole module; every
test names its patients with a random tag, so its searches find only what it wrote.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import hashlib
import json
import secrets
import shutil
import string
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fhirclient import client as smart_client  # type: ignore[import-untyped]
from fhirclient.models.auditevent import AuditEvent  # type: ignore[import-untyped]
from fhirclient.models.binary import Binary  # type: ignore[import-untyped]
from fhirclient.models.bundle import Bundle  # type: ignore[import-untyped]
from fhirclient.models.communication import Communication  # type: ignore[import-untyped]
from fhirclient.models.communicationrequest import (  # type: ignore[import-untyped]
    CommunicationRequest,
)
from fhirclient.models.documentreference import DocumentReference  # type: ignore[import-untyped]
from fhirclient.models.operationoutcome import OperationOutcome  # type: ignore[import-untyped]
from fhirclient.models.parameters import Parameters  # type: ignore[import-untyped]
from fhirclient.models.patient import Patient  # type: ignore[import-untyped]
from fhirclient.models.provenance import Provenance  # type: ignore[import-untyped]
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound
from sqlalchemy.engine import Engine

from tests.conftest import empty_tables
from tests.e2e.server_process import running_server
from tests.factories import PDF_BYTES

pytestmark = pytest.mark.e2e

JS_DIR = Path(__file__).parent / "js"
SERVED_TYPES = {"Patient", "DocumentReference", "Binary", "Communication",
                "CommunicationRequest", "Provenance", "AuditEvent"}
FHIR_JSON_TYPE = "application/fhir+json"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         database_urls: dict[str, str], sync_engines: dict[str, Engine]) -> Iterator[str]:
    """The FHIR base URL of a server process on the backend, shared by the module's tests and
    started on empty tables (the SQLite file is the process's own)."""
    if request.param == "postgresql" and "postgresql" in sync_engines:
        empty_tables(sync_engines["postgresql"])
    data_dir = tmp_path_factory.mktemp(f"clients-{request.param}") / "var"
    with running_server(request.param, data_dir, database_urls) as running:
        yield f"{running.base}/fhir"


@pytest.fixture
def tag() -> str:
    """Letters that make this test's names unique in a database other tests also fill."""
    return _letters()


def _letters() -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))


def _patient(family: str, given: str = "Ana", **elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": [given]}]} | elements


# --- fhirpy -----------------------------------------------------------------------------------


def _tagged_patient_search(base: str, tag: str) -> tuple[AsyncFHIRClient, dict[str, str], Any]:
    """A fhirpy client, an identifier unique to this test, and the Patient search by it."""
    fhir = AsyncFHIRClient(base)
    identifier = {"system": "urn:example:fhirpy", "value": tag}
    return fhir, identifier, fhir.resources("Patient").search(
        identifier=f"urn:example:fhirpy|{tag}")


def test_fhirpy_creates_reads_updates_and_deletes(base: str, tag: str) -> None:
    async def scenario() -> None:
        fhir = AsyncFHIRClient(base)
        created = fhir.resource("Patient", **_patient(f"Py{tag}", gender="female"))
        await created.save()
        assert created["meta"]["versionId"] == "1"

        read = await fhir.reference("Patient", created.id).to_resource()
        assert read["name"][0]["family"] == f"Py{tag}"

        read["gender"] = "other"
        await read.save()
        assert read["meta"]["versionId"] == "2"
        assert (await fhir.get("Patient", created.id))["gender"] == "other"

        await fhir.delete(read)
        with pytest.raises(ResourceNotFound):
            await fhir.get("Patient", created.id)

    asyncio.run(scenario())


def test_fhirpy_get_or_create_returns_the_existing_patient(base: str, tag: str) -> None:
    """fhirpy's conditional create puts the criteria in the URL, not in If-None-Exist."""
    async def scenario() -> None:
        fhir, identifier, search = _tagged_patient_search(base, tag)

        first, created = await search.get_or_create(
            fhir.resource("Patient", **_patient(f"Py{tag}", identifier=[identifier])))
        again, created_again = await search.get_or_create(
            fhir.resource("Patient", **_patient(f"Py{tag}", identifier=[identifier])))

        assert (created, created_again) == (True, False)
        assert again.id == first.id
        assert await search.count() == 1

    asyncio.run(scenario())


def test_fhirpy_conditional_update_and_delete(base: str, tag: str) -> None:
    """fhirpy's ``search(...).update()`` and ``search(...).delete()``: PUT and DELETE at
    ``Patient?criteria``."""
    async def scenario() -> None:
        fhir, identifier, search = _tagged_patient_search(base, tag)

        first, created = await search.update(
            fhir.resource("Patient", **_patient(f"Py{tag}", identifier=[identifier])))
        again, created_again = await search.update(fhir.resource(
            "Patient", **_patient(f"Py{tag}", identifier=[identifier], gender="male")))
        assert (created, created_again) == (True, False)
        assert again.id == first.id and again["meta"]["versionId"] == "2"
        assert (await fhir.get("Patient", first.id))["gender"] == "male"

        _, status = await search.delete()
        assert status == 204
        assert await search.count() == 0
        with pytest.raises(ResourceNotFound):
            await fhir.get("Patient", first.id)

    asyncio.run(scenario())


def test_fhirpy_fetch_all_follows_next_links(base: str, tag: str) -> None:
    async def scenario() -> None:
        fhir = AsyncFHIRClient(base)
        for index in range(5):
            await fhir.resource("Patient", **_patient(f"Py{tag}", f"G{index}")).save()
        search = fhir.resources("Patient").search(family=f"Py{tag}").limit(2)

        first_page = await search.fetch_raw()
        every = await search.fetch_all()

        assert len(first_page["entry"]) == 2
        assert [link["relation"] for link in first_page["link"]].count("next") == 1
        assert len({patient.id for patient in every}) == 5
        assert await search.count() == 5

    asyncio.run(scenario())


def test_fhirpy_posts_a_transaction_and_searches_by_reference(base: str, tag: str) -> None:
    async def scenario() -> None:
        fhir = AsyncFHIRClient(base)
        patient_url = "urn:uuid:7d1c4a52-3f3e-4c43-9d0e-3f8f0a7d2c11"
        response = await fhir.execute("/", method="post", data={
            "resourceType": "Bundle", "type": "transaction", "entry": [
                {"fullUrl": patient_url, "resource": _patient(f"Py{tag}"),
                 "request": {"method": "POST", "url": "Patient"}},
                {"resource": {"resourceType": "Communication", "status": "completed",
                              "subject": {"reference": patient_url},
                              "payload": [{"contentString": "Welcome"}]},
                 "request": {"method": "POST", "url": "Communication"}},
            ]})
        assert response["type"] == "transaction-response"
        assert [entry["response"]["status"] for entry in response["entry"]] == [
            "201 Created", "201 Created"]
        patient = fhir.reference("Patient", response["entry"][0]["resource"]["id"])

        found = await fhir.resources("Communication").search(subject=patient).fetch_all()

        assert [communication["subject"]["reference"] for communication in found] == [
            patient.reference]

    asyncio.run(scenario())


def test_fhirpy_runs_match_everything_and_validate(base: str, tag: str) -> None:
    async def scenario() -> None:
        fhir = AsyncFHIRClient(base)
        demographics = {"birthDate": "1961-07-14",
                        "telecom": [{"system": "phone", "value": "+16175550188"}]}
        stored = fhir.resource("Patient", **_patient(f"Py{tag}", "Rosa", **demographics))
        await stored.save()

        matches = await fhir.resources("Patient").execute("$match", data={
            "resourceType": "Parameters", "parameter": [
                {"name": "resource", "resource": _patient(f"Py{tag}", "Rosa", **demographics)},
                {"name": "count", "valueInteger": 3}]})
        everything = await stored.execute("$everything", method="get")

        assert matches["entry"][0]["resource"]["id"] == stored.id
        assert [entry["resource"]["id"] for entry in everything["entry"]] == [stored.id]
        assert await fhir.resource("Patient", **_patient(f"Py{tag}")).is_valid() is True
        assert await fhir.resource("Patient", gender="robot").is_valid() is False

    asyncio.run(scenario())


# --- fhirclient (SMART on FHIR) ---------------------------------------------------------------


def _smart(base: str) -> Any:
    return smart_client.FHIRClient(settings={"app_id": "client-library-tests", "api_base": base})


def test_fhirclient_reads_the_capability_statement_into_its_models(base: str) -> None:
    smart = _smart(base)

    assert smart.prepare() is True
    statement = smart.server.capabilityStatement
    assert statement.fhirVersion == "4.0.1"
    assert SERVED_TYPES <= {resource.type for resource in statement.rest[0].resource}


def test_fhirclient_creates_reads_updates_and_deletes(base: str, tag: str) -> None:
    server = _smart(base).server

    created = Patient(_patient(f"Smart{tag}", gender="female")).create(server)
    read = Patient.read(created["id"], server)
    read.gender = "other"
    updated = read.update()
    read.delete()

    assert (read.meta.versionId, read.name[0].family) == ("1", f"Smart{tag}")
    assert Patient(updated).meta.versionId == "2"
    with pytest.raises(requests.HTTPError) as gone:
        Patient.read(created["id"], server)
    answer = gone.value.response
    assert answer is not None and answer.status_code == 410
    assert OperationOutcome(answer.json()).issue[0].severity == "error"


def test_fhirclient_pages_search_results(base: str, tag: str) -> None:
    server = _smart(base).server
    for index in range(5):
        Patient(_patient(f"Smart{tag}", f"G{index}")).create(server)
    search = Patient.where({"family": f"Smart{tag}", "_count": "2"})

    pages = list(search.perform_iter(server))
    resources = list(search.perform_resources_iter(server))

    assert [len(page.entry) for page in pages] == [2, 2, 1]
    assert len({patient.id for patient in resources}) == 5


def test_fhirclient_posts_a_transaction_bundle(base: str, tag: str) -> None:
    server = _smart(base).server
    patient_url = "urn:uuid:5b3e0c39-0f55-4a55-8f69-2c4f4d6e9a21"
    transaction = Bundle({"type": "transaction", "entry": [
        {"fullUrl": patient_url, "resource": _patient(f"Smart{tag}"),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "CommunicationRequest", "status": "draft",
                      "subject": {"reference": patient_url},
                      "payload": [{"contentString": "Your results are ready"}]},
         "request": {"method": "POST", "url": "CommunicationRequest"}},
    ]})

    response = Bundle(transaction.create(server))

    assert response.type == "transaction-response"
    assert [entry.response.status for entry in response.entry] == ["201 Created"] * 2
    request = CommunicationRequest.read(response.entry[1].resource.id, server)
    assert request.subject.reference == f"Patient/{response.entry[0].resource.id}"


def test_fhirclient_runs_match_and_everything(base: str, tag: str) -> None:
    server = _smart(base).server
    demographics = {"birthDate": "1958-02-11", "gender": "male",
                    "telecom": [{"system": "email", "value": f"{tag}@example.org"}]}
    stored = Patient(_patient(f"Smart{tag}", "Omar", **demographics)).create(server)
    query = Parameters({"parameter": [
        {"name": "resource", "resource": _patient(f"Smart{tag}", "Omar", **demographics)},
        {"name": "onlyCertainMatches", "valueBoolean": True}]})

    matches = Bundle(server.post_json("Patient/$match", query.as_json()).json())
    everything = Bundle.read_from(f"Patient/{stored['id']}/$everything", server)

    assert [entry.resource.id for entry in matches.entry] == [stored["id"]]
    assert matches.entry[0].search.mode == "match"
    assert [entry.resource.id for entry in everything.entry] == [stored["id"]]


def test_fhirclient_models_accept_every_served_type(base: str, tag: str) -> None:
    """Documents, files, messages, a merge's Provenance and the audit trail, all read through
    the client's strict R4 models (an element they do not know would raise)."""
    server = _smart(base).server
    kept = Patient(_patient(f"Smart{tag}", "Lena")).create(server)
    duplicate = Patient(_patient(f"Smart{tag}", "Lena")).create(server)
    subject = {"reference": f"Patient/{kept['id']}"}
    document = DocumentReference({"status": "current", "subject": subject, "content": [
        {"attachment": {"contentType": "application/pdf", "title": "results.pdf",
                        "data": base64.b64encode(PDF_BYTES).decode()}}]}).create(server)
    message = Communication({"status": "completed", "subject": subject,
                             "payload": [{"contentString": "Hello"}]}).create(server)
    merge = Parameters(server.post_json("Patient/$merge", Parameters({"parameter": [
        {"name": "source-patient", "valueReference": {"reference": f"Patient/{duplicate['id']}"}},
        {"name": "target-patient", "valueReference": subject}]}).as_json()).json())
    merge_id = next(part.valueString for part in merge.parameter if part.name == "merge")

    read_document = DocumentReference.read(document["id"], server)
    binary_id = read_document.content[0].attachment.url.rsplit("/", 1)[1]
    assert read_document.content[0].attachment.size == len(PDF_BYTES)
    assert base64.b64decode(Binary.read(binary_id, server).data) == PDF_BYTES
    assert Communication.read(message["id"], server).subject.reference == subject["reference"]
    provenance = Provenance.read(merge_id, server)
    assert subject["reference"] in {target.reference.rsplit("/_history", 1)[0]
                                    for target in provenance.target}
    audit = list(AuditEvent.where({"patient": subject["reference"], "_count": "20"})
                 .perform_resources_iter(server))
    assert {event.action for event in audit} >= {"C", "R"}


# --- fhir-kit-client (npm, Node.js) -----------------------------------------------------------


@pytest.fixture(scope="session")
def fhir_kit_client_script() -> Path:
    """tests/e2e/js with its node_modules installed from package-lock.json (npm ci), once per
    lock file version; the tests fail, not skip, without Node.js 20+ and npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("the fhir-kit-client tests need Node.js 20 or newer and npm on PATH "
                    "(Debian: apt-get install nodejs npm)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"the fhir-kit-client tests need Node.js 20 or newer, found {version}")
    lock_digest = hashlib.sha256((JS_DIR / "package-lock.json").read_bytes()).hexdigest()[:16]
    stamp = JS_DIR / "node_modules" / f".installed-{lock_digest}"
    guard = Path(tempfile.gettempdir()) / (
        "fhir-kit-client-npm-" + hashlib.sha256(str(JS_DIR).encode()).hexdigest()[:12] + ".lock")
    with guard.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            installed = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR,
                capture_output=True, text=True, timeout=300, check=False)
            if installed.returncode != 0:
                pytest.fail(f"npm ci in {JS_DIR} failed:\n{installed.stdout}{installed.stderr}")
            stamp.touch()
    return JS_DIR / "fhir_kit_client.mjs"


@pytest.fixture(scope="module")
def fhir_kit(base: str, fhir_kit_client_script: Path) -> dict[str, Any]:
    """What the script saw at each step (one run per backend), failed steps under 'errors'."""
    tag = _letters()
    run = subprocess.run(["node", str(fhir_kit_client_script), base, tag],
                         cwd=JS_DIR, capture_output=True, text=True, timeout=120, check=False)
    if run.returncode != 0:
        pytest.fail(f"fhir_kit_client.mjs exited with {run.returncode}:\n{run.stderr}")
    results: dict[str, Any] = json.loads(run.stdout)
    results["base"] = base
    return results


def _seen(results: dict[str, Any], *steps: str) -> list[dict[str, Any]]:
    failed = {step: results["errors"][step] for step in steps if step in results["errors"]}
    assert not failed, json.dumps(failed, indent=1)
    return [results["seen"][step] for step in steps]


def test_fhir_kit_client_creates_reads_updates_and_deletes(fhir_kit: dict[str, Any]) -> None:
    created, read, updated, first, history, deleted = _seen(
        fhir_kit, "create", "read", "update", "vread", "history", "delete")

    assert created["status"] == 201 and created["etag"] == 'W/"1"'
    assert created["location"] == f"{fhir_kit['base']}/Patient/{created['id']}/_history/1"
    assert created["contentType"].startswith(FHIR_JSON_TYPE)
    assert (read["id"], read["etag"]) == (created["id"], 'W/"1"')
    assert (updated["versionId"], updated["gender"], updated["etag"]) == ("2", "other", 'W/"2"')
    assert (first["versionId"], first["gender"]) == ("1", "female")
    assert history == {"type": "history", "methods": ["PUT", "POST"]}
    assert deleted == {"readAfterDelete": 410}


def test_fhir_kit_client_conditional_create_returns_the_existing_patient(
        fhir_kit: dict[str, Any]) -> None:
    created, again = _seen(fhir_kit, "create", "conditionalCreate")

    assert (again["status"], again["id"]) == (200, created["id"])


def test_fhir_kit_client_pages_with_next_and_previous_links(fhir_kit: dict[str, Any]) -> None:
    by_get, by_post = _seen(fhir_kit, "searchPages", "postSearchPages")

    assert by_get["sizes"] == [2, 2, 1]
    assert len(set(by_get["ids"])) == 5
    assert by_get["previousIds"] == by_get["ids"][:2]
    assert by_post == {"sizes": by_get["sizes"], "ids": by_get["ids"]}


def test_fhir_kit_client_posts_transaction_and_batch_bundles(fhir_kit: dict[str, Any]) -> None:
    transaction, batch = _seen(fhir_kit, "transaction", "batch")

    assert transaction["type"] == "transaction-response"
    assert transaction["statuses"] == ["201 Created", "201 Created"]
    assert transaction["communicationSubject"] == f"Patient/{transaction['patientId']}"
    assert batch == {"type": "batch-response", "statuses": ["200 OK", "404 Not Found"]}


def test_fhir_kit_client_runs_match_everything_and_validate(fhir_kit: dict[str, Any]) -> None:
    created, match, everything, validate = _seen(
        fhir_kit, "create", "match", "everything", "validate")

    assert match == {"type": "searchset", "firstId": created["id"], "grade": "certain"}
    assert everything == {"type": "searchset", "types": ["Communication", "Patient"]}
    assert validate == {"resourceType": "OperationOutcome", "severities": ["error"]}


def test_fhir_kit_client_reads_the_capability_statement(fhir_kit: dict[str, Any]) -> None:
    (metadata,) = _seen(fhir_kit, "metadata")

    assert metadata["fhirVersion"] == "4.0.1"
    assert FHIR_JSON_TYPE in metadata["format"]
