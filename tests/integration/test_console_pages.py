"""The web console's pages over HTTP on SQLite and PostgreSQL: search with paging, the patient
page (SSN masked, documents with working download links, messages, history), the side-by-side
comparison, security headers, the login cookie when auth is configured."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from fhir_server.console import session
from tests.factories import PDF_BYTES
from tests.integration.console_helpers import SSN, duplicate_pair, person, put


def _rows(html: str) -> list[str]:
    return re.findall(r'<th scope="row" data-label="Name"><a href="/console/patients/([^"]+)"',
                      html)


@pytest.mark.parametrize("query", ["name=rivera", "name=ANA", "birthdate=1984-03-09",
                                   "identifier=H-pa", f"identifier={SSN}",
                                   "phone=%2B16174952000", "phone=617-495-2000",
                                   "name=rivera&birthdate=1984-03-09"])
def test_search_finds_the_patient_by_each_criterion(client: TestClient, query: str) -> None:
    put(client, person("pa"))
    put(client, person("other", given="Zoe", family="Quint", birth_date="1990-01-01",
                       ssn="987-65-4321", telecom=[{"system": "phone", "value": "+1 212 555 0100"}]))
    page = client.get(f"/console/patients?{query}")
    assert page.status_code == 200
    assert _rows(page.text) == ["pa"]


def test_search_pages_through_results_in_name_order(client: TestClient) -> None:
    for number in range(23):
        put(client, person(f"p{number:02d}", given=f"Given{number:02d}", ssn=None))
    first = client.get("/console/patients?name=rivera")
    assert _rows(first.text) == [f"p{number:02d}" for number in range(20)]
    assert "(23)" in first.text
    next_link = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert next_link is not None
    second = client.get(next_link.group(1).replace("&amp;", "&"))
    assert _rows(second.text) == ["p20", "p21", "p22"]
    assert 'rel="prev"' in second.text


def test_search_shows_a_bad_criterion_as_an_error_on_the_form(client: TestClient) -> None:
    page = client.get("/console/patients?birthdate=yesterday")
    assert page.status_code == 400
    assert 'role="alert"' in page.text and "birthdate" in page.text


def test_patient_page_masks_the_ssn(client: TestClient) -> None:
    put(client, person("pa"))
    page = client.get("/console/patients/pa")
    assert page.status_code == 200
    assert SSN not in page.text and "123456789" not in page.text
    assert "•••-••-6789" in page.text


def test_patient_page_lists_documents_messages_and_history(client: TestClient) -> None:
    duplicate_pair(client)
    put(client, person("pb", given="Anna", ssn=None, gender="other"))
    page = client.get("/console/patients/pb").text
    assert "Blood panel" in page and "/console/documents/doc-b/download" in page
    assert "Your results are ready" in page
    assert "See you tomorrow at 10:00" in page and "2099-01-02 09:00" in page
    assert re.search(r'data-label="Version">2</th>.*?data-label="Changed">gender</td>', page,
                     re.DOTALL)
    assert "Likely duplicates" in page and "/console/compare/pb/pa" in page


def test_document_download_redirects_to_a_signed_link_serving_the_bytes(
        client: TestClient) -> None:
    duplicate_pair(client)
    redirect = client.get("/console/documents/doc-b/download", follow_redirects=False)
    assert redirect.status_code == 303
    assert redirect.headers["location"].startswith("/download/")
    download = client.get(redirect.headers["location"])
    assert download.status_code == 200 and download.content == PDF_BYTES


def test_unknown_patient_is_a_404_page(client: TestClient) -> None:
    page = client.get("/console/patients/nobody")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text


def test_compare_shows_each_field_outcome_and_weight(client: TestClient) -> None:
    duplicate_pair(client)
    page = client.get("/console/compare/pa/pb")
    assert page.status_code == 200
    outcomes = {label: outcome for outcome, label in re.findall(
        r'<tr class="outcome-(\w+)">\s*<th scope="row" data-label="Field">([^<]+)</th>',
        page.text)}
    assert outcomes["Family name"] == "agree"
    assert outcomes["Given names"] == "partial"
    assert outcomes["Birth date"] == "agree"
    assert outcomes["SSN"] == "unknown"  # the second record has none: not compared
    assert re.search(r'data-label="Weight" class="num">\+\d+\.\d</td>', page.text)
    assert SSN not in page.text


def test_pages_carry_the_security_headers(client: TestClient) -> None:
    page = client.get("/console/patients")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    cookie = page.headers["set-cookie"]
    assert "fhir_console_csrf=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Path=/console" in cookie


def test_stylesheet_is_served_by_the_server(client: TestClient) -> None:
    css = client.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in css.text


def test_console_needs_no_login_without_auth(client: TestClient) -> None:
    assert client.get("/console/login", follow_redirects=False).headers["location"] == \
        "/console"


def test_console_sends_to_login_and_stores_the_token_cookie_when_auth_is_configured(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "auth_configured", lambda settings: True)
    redirect = client.get("/console/patients?name=x", follow_redirects=False)
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "/console/login?next=/console/patients%3Fname%3Dx"
    login = client.get(redirect.headers["location"])
    assert login.status_code == 200 and 'name="token"' in login.text
    token = re.search(r'name="csrf" value="([^"]+)"', login.text)
    assert token is not None
    signed_in = client.post("/console/login", data={
        "csrf": token.group(1), "token": "header.payload.signature",
        "next": "/console/patients?name=x"}, follow_redirects=False)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/console/patients?name=x"
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith("fhir_console_token=header.payload.signature")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie


def test_login_never_redirects_off_the_console(client: TestClient,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "auth_configured", lambda settings: True)
    login = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', login.text)
    assert token is not None
    response = client.post("/console/login", data={
        "csrf": token.group(1), "token": "a.b.c", "next": "//evil.example/x"},
        follow_redirects=False)
    assert response.headers["location"] == "/console"
