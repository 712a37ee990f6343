"""Hardening (issue 9, point 5): security headers, CORS, body and JSON depth limits on every
route, the per-client send rate limit, bounded _count and _include fan-out, statement
timeouts answered 503, and no exception text in error answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.interactions import read as read_interaction
from fhir_server.settings import Settings
from tests.conftest import empty_tables
from tests.factories import FHIR_JSON, communication_request, issue_codes, patient

Hardened = Callable[..., AbstractContextManager[TestClient]]
ORIGIN = "https://app.example.org"


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest, database_urls: dict[str, str]) -> str:
    """SQLite unless a test asks for PostgreSQL (most of these layers do not touch SQL)."""
    if request.param not in database_urls:
        pytest.skip("PostgreSQL tests need FHIR_TEST_POSTGRES_URL")
    return str(request.param)


@pytest.fixture
def hardened(settings: Settings, engine: Engine) -> Hardened:
    """A fresh app over empty tables with some settings changed."""

    @contextmanager
    def start(*, raise_errors: bool = True, **changes: Any) -> Iterator[TestClient]:
        empty_tables(engine)
        app = create_app(settings.model_copy(update=changes), migrate=False)
        with TestClient(app, raise_server_exceptions=raise_errors) as client:
            yield client

    return start


def _nested_extension(levels: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "urn:example:leaf", "valueString": "x"}
    for _ in range(levels):
        extension = {"url": "urn:example:level", "extension": [extension]}
    return extension


def _chunks(size: int) -> Iterator[bytes]:
    """A body sent chunked, without Content-Length."""
    for _ in range(size // 1000):
        yield b"a" * 1000


# ----------------------------------------------------------------------- security headers


def test_security_headers_on_success_error_and_limit_answers(hardened: Hardened) -> None:
    with hardened(max_body_bytes=1000) as client:
        answers = [client.get("/fhir/metadata"), client.get("/fhir/Patient/unknown"),
                   client.post("/fhir/Patient", content=b"{" * 2000, headers=FHIR_JSON),
                   client.get("/health")]
    assert [answer.status_code for answer in answers] == [200, 404, 413, 200]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert "strict-transport-security" not in answer.headers
    assert answers[1].headers["cache-control"] == "no-store"
    assert answers[2].headers["cache-control"] == "no-store"
    assert "cache-control" not in answers[0].headers  # the CapabilityStatement holds no PHI


def test_hsts_when_configured(hardened: Hardened) -> None:
    with hardened(hsts=True) as client:
        answer = client.get("/fhir/metadata")
    assert answer.headers["strict-transport-security"].startswith("max-age=")


def test_unexpected_error_answers_500_without_exception_text(
        hardened: Hardened, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret detail: SSN 123-45-6789 at /srv/fhir/storage.py line 12")

    monkeypatch.setattr(read_interaction, "read", broken)
    with hardened(raise_errors=False) as client:
        answer = client.get("/fhir/Patient/p-1")
    assert answer.status_code == 500
    assert issue_codes(answer.json()) == ["exception"]
    for leaked in ("123-45-6789", "secret", "Traceback", "RuntimeError", "storage.py"):
        assert leaked not in answer.text
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-request-id"]  # the id the failure is logged under


# -------------------------------------------------------------------------------- CORS


def test_cors_is_off_by_default(hardened: Hardened) -> None:
    with hardened() as client:
        answer = client.get("/fhir/metadata", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in answer.headers


def test_cors_answers_preflights_and_exposes_version_headers(hardened: Hardened) -> None:
    with hardened(cors_origins=f"{ORIGIN}, https://other.example.org") as client:
        preflight = client.options("/fhir/Patient", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, if-match"})
        created = client.post("/fhir/Patient", json=patient(), headers={
            **FHIR_JSON, "Origin": ORIGIN})
        stranger = client.get("/fhir/metadata", headers={"Origin": "https://evil.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "PATCH" in preflight.headers["access-control-allow-methods"]
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == ORIGIN
    exposed = created.headers["access-control-expose-headers"].lower()
    for name in ("etag", "location", "content-location", "last-modified"):
        assert name in exposed
    assert "access-control-allow-origin" not in stranger.headers


# ------------------------------------------------------------------------ request limits


def test_json_bodies_deeper_than_the_limit_are_refused(hardened: Hardened) -> None:
    deep = patient(extension=[_nested_extension(5)])  # 13 levels of objects and arrays
    shallow = patient(extension=[_nested_extension(2)])
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": deep, "request": {"method": "POST", "url": "Patient"}}]}
    with hardened(max_json_depth=10) as client:
        answers = [client.post("/fhir/Patient", json=deep, headers=FHIR_JSON),
                   client.post("/fhir", json=bundle, headers=FHIR_JSON),
                   client.post("/fhir/Patient/$match", headers=FHIR_JSON, json={
                       "resourceType": "Parameters",
                       "parameter": [{"name": "resource", "resource": deep}]})]
        accepted = client.post("/fhir/Patient", json=shallow, headers=FHIR_JSON)
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert issue_codes(answer.json()) == ["too-long"]
        assert "10 levels deep (FHIR_MAX_JSON_DEPTH)" in answer.text
    assert accepted.status_code == 201


def test_xml_bodies_deeper_than_the_limit_are_refused(hardened: Hardened) -> None:
    inner = '<extension url="urn:example:leaf"><valueString value="x"/></extension>'
    for _ in range(5):
        inner = f'<extension url="urn:example:level">{inner}</extension>'
    body = f'<Patient xmlns="http://hl7.org/fhir">{inner}</Patient>'
    with hardened(max_json_depth=10) as client:
        answer = client.post("/fhir/Patient", content=body.encode(), headers={
            "Content-Type": "application/fhir+xml", "Accept": "application/fhir+json"})
    assert answer.status_code == 400, answer.text
    assert "FHIR_MAX_JSON_DEPTH" in answer.text


@pytest.mark.parametrize("path", ["/fhir/Patient", "/fhir/Patient/_search",
                                  "/messaging/twilio/status", "/messaging/templates",
                                  "/fhir/Patient/$match"])
def test_chunked_bodies_over_the_limit_are_refused_on_every_route(
        hardened: Hardened, path: str) -> None:
    with hardened(max_body_bytes=4000, twilio_auth_token="not-checked-before-the-limit"
                  ) as client:
        answer = client.post(path, content=_chunks(20_000), headers={
            "Content-Type": ("application/x-www-form-urlencoded" if "_search" in path
                             or "twilio" in path else "application/fhir+json")})
    assert answer.status_code == 413, answer.text
    assert issue_codes(answer.json()) == ["too-long"]
    assert "4000 bytes (FHIR_MAX_BODY_BYTES)" in answer.text


def test_declared_length_over_the_limit_is_refused_before_reading(hardened: Hardened) -> None:
    with hardened(max_body_bytes=4000) as client:
        answer = client.post("/messaging/twilio/inbound", content=b"a" * 5000, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413


def test_count_is_capped_at_the_page_size_maximum(hardened: Hardened) -> None:
    with hardened(page_size_max=2) as client:
        for number in range(3):
            assert client.put(f"/fhir/Patient/p-{number}", json=patient(id=f"p-{number}"),
                              headers=FHIR_JSON).status_code == 201
        page = client.get("/fhir/Patient?_count=1000000").json()
    assert len(page["entry"]) == 2
    assert any(link["relation"] == "next" for link in page["link"])


def test_include_fan_out_is_bounded_with_a_warning(hardened: Hardened) -> None:
    with hardened(include_max=2) as client:
        assert client.put("/fhir/Patient/p-1", json=patient(id="p-1"),
                          headers=FHIR_JSON).status_code == 201
        for number in range(4):
            request = communication_request(id=f"r-{number}", status="completed")
            assert client.put(f"/fhir/CommunicationRequest/r-{number}", json=request,
                              headers=FHIR_JSON).status_code == 201
        repeated = "&".join(["_revinclude=CommunicationRequest:subject"] * 50)
        bundle = client.get(f"/fhir/Patient?_id=p-1&{repeated}").json()
        small = client.get("/fhir/Patient?_id=p-1&_revinclude=CommunicationRequest:subject"
                           "&_count=1").json()
    modes = [entry["search"]["mode"] for entry in bundle["entry"]]
    assert modes == ["match", "include", "include", "outcome"]
    outcome = bundle["entry"][-1]["resource"]
    assert outcome["issue"][0]["severity"] == "warning"
    assert "FHIR_INCLUDE_MAX" in outcome["issue"][0]["diagnostics"]
    assert [entry["search"]["mode"] for entry in small["entry"]][-1] == "outcome"


# -------------------------------------------------------------------- send rate limit


def test_bulk_sends_over_the_rate_limit_answer_429(hardened: Hardened) -> None:
    with hardened(send_rate_limit=3) as client:
        for number in (1, 2):
            resource = patient(id=f"p-{number}", telecom=[
                {"system": "phone", "value": f"+1617495200{number}", "use": "mobile"}])
            assert client.put(f"/fhir/Patient/p-{number}", json=resource,
                              headers=FHIR_JSON).status_code == 201
        order = communication_request(identifier=None, recipient=[
            {"reference": "Patient/p-1"}, {"reference": "Patient/p-2"}])
        first = client.post("/fhir/CommunicationRequest", json=order, headers=FHIR_JSON)
        second = client.post("/fhir/CommunicationRequest", json=order, headers=FHIR_JSON)
        draft = client.post("/fhir/CommunicationRequest", json=order | {"status": "draft"},
                            headers=FHIR_JSON)
        stored = client.get("/fhir/CommunicationRequest?_summary=count").json()["total"]
    assert first.status_code == 201, first.text
    assert second.status_code == 429, second.text
    assert issue_codes(second.json()) == ["throttled"]
    assert int(second.headers["retry-after"]) >= 1
    assert "FHIR_SEND_RATE_LIMIT" in second.text
    assert draft.status_code == 201  # a draft sends nothing: not charged
    assert stored == 2


# -------------------------------------------------------------------- statement timeout


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_statement_cancelled_by_the_timeout_answers_503(hardened: Hardened,
                                                        engine: Engine) -> None:
    with hardened(statement_timeout_ms=300) as client:
        assert client.put("/fhir/Patient/p-1", json=patient(id="p-1"),
                          headers=FHIR_JSON).status_code == 201
        with engine.connect() as blocker:
            blocker.execute(text("LOCK TABLE patients IN ACCESS EXCLUSIVE MODE"))
            searched = client.get("/fhir/Patient?family=Rivera")
            blocker.rollback()
        after = client.get("/fhir/Patient?family=Rivera")
    assert searched.status_code == 503, searched.text
    assert issue_codes(searched.json()) == ["timeout"]
    assert searched.headers["retry-after"] == "5"
    for leaked in ("SELECT", "statement", "Rivera", "psycopg", "57014"):
        assert leaked not in searched.json()["issue"][0]["diagnostics"]
    assert after.status_code == 200
