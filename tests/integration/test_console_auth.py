"""The console when authorisation is configured: the login page and its cookie, the token's
scopes deciding each action ($merge its own), and the audit trail recording what the console
did, as for the API."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from storage.tables import patients
from tests.integration.console_helpers import duplicate_pair
from tests.tokens import TokenIssuer

READER = ("user/Patient.rs user/Patient.$match user/DocumentReference.rs user/Binary.r "
          "user/Communication.rs user/CommunicationRequest.rs user/Provenance.rs")
MERGER = READER + " user/Patient.$merge"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _seed(client: TestClient, issuer: TokenIssuer) -> None:
    headers = issuer.headers("user/*.cud user/Patient.r", subject="loader")
    original = client.put

    def put(url: str, **kwargs: Any) -> Any:
        return original(url, headers={**kwargs.pop("headers", {}), **headers}, **kwargs)

    client.put = put  # type: ignore[method-assign]
    try:
        duplicate_pair(client)
    finally:
        client.put = original  # type: ignore[method-assign]


def _sign_in(client: TestClient, token: str) -> None:
    login = client.get("/console/login")
    assert login.status_code == 200
    found = _CSRF.search(login.text)
    assert found is not None
    response = client.post("/console/login", data={"csrf": found.group(1), "token": token,
                                                   "next": "/console/duplicates"},
                           follow_redirects=False)
    assert response.status_code == 303


def _csrf(client: TestClient) -> str:
    found = _CSRF.search(client.get("/console/duplicates").text)
    assert found is not None
    return found.group(1)


def _merged_into(engine: Engine, patient_id: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(patients.c.merged_into_id).where(
            patients.c.id == patient_id)).scalar_one()


def test_console_pages_send_to_the_login_page_without_a_token(
        secured_client: TestClient) -> None:
    response = secured_client.get("/console/patients?name=x", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == \
        "/console/login?next=%2Fconsole%2Fpatients%3Fname%3Dx"
    assert secured_client.get("/console/login").status_code == 200
    assert secured_client.get("/console/static/console.css").status_code == 200


def test_a_refused_token_sends_back_to_the_login_page(secured_client: TestClient) -> None:
    secured_client.cookies.set("fhir_console_token", "not.a.token", path="/console")
    response = secured_client.get("/console/patients", follow_redirects=False)
    assert response.status_code == 303 and "expired=1" in response.headers["location"]
    assert 'fhir_console_token=""' in response.headers["set-cookie"]


def test_merge_needs_the_merge_scope_and_is_audited(secured_client: TestClient,
                                                    token_issuer: TokenIssuer,
                                                    engine: Engine) -> None:
    _seed(secured_client, token_issuer)
    _sign_in(secured_client, token_issuer.token(READER, subject="reviewer"))
    assert secured_client.get("/console/compare/pa/pb").status_code == 200
    refused = secured_client.post("/console/merge", data={
        "csrf": _csrf(secured_client), "source": "pb", "target": "pa"}, follow_redirects=False)
    assert refused.status_code == 403
    assert _merged_into(engine, "pb") is None

    _sign_in(secured_client, token_issuer.token(MERGER, subject="manager"))
    merged = secured_client.post("/console/merge", data={
        "csrf": _csrf(secured_client), "source": "pb", "target": "pa"}, follow_redirects=False)
    assert merged.status_code == 303
    assert _merged_into(engine, "pb") == "pa"

    bundle = secured_client.get("/fhir/AuditEvent?_count=100", headers=token_issuer.headers(
        "user/AuditEvent.rs", subject="auditor")).json()
    events = [entry["resource"] for entry in bundle.get("entry", [])]
    by_who = {(event["agent"][0].get("altId"), event["subtype"][0]["code"], event["outcome"])
              for event in events}
    assert ("reviewer", "$match", "0") in by_who  # the comparison
    assert ("manager", "$merge", "0") in by_who
    assert {outcome for who, subtype, outcome in by_who
            if (who, subtype) == ("reviewer", "$merge")} - {"0"}  # the refusal, recorded
    assert ("reviewer", "read", "0") in by_who  # the pages' reads, through the repositories
