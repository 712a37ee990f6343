"""The web console in a real browser: headless Chromium (Debian's, at /usr/bin/chromium) driven
by Playwright against the real ``fhir-server`` process on the embedded default (SQLite). Search,
open the patient, scan for duplicates, compare the pair, preview the merge, merge, undo, dismiss
another pair, with the database checked after each change; keyboard use, visible focus, no
layout shift and the phone width checked on the way. Each page's screenshot is saved under
``artifacts/console/``."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from storage.console_tables import console_duplicate_dismissals
from storage.media_tables import media_assets
from storage.tables import patients
from tests.e2e.server_process import running_server
from tests.factories import FHIR_JSON, PDF_BYTES

pytestmark = pytest.mark.e2e
playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
SSN = "123-45-6789"
LAYOUT_SHIFT = """() => new Promise(done => {
  let total = 0;
  new PerformanceObserver(list => { for (const e of list.getEntries())
    if (!e.hadRecentInput) total += e.value; }).observe({type: 'layout-shift', buffered: true});
  setTimeout(() => done(total), 300);
})"""


def _patient(resource_id: str, given: str, family: str, birth_date: str,
             ssn: str | None = None) -> dict[str, Any]:
    identifiers = [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn}] if ssn else []
    return {"resourceType": "Patient", "id": resource_id, "active": True,
            "identifier": [*identifiers, {"system": "urn:example:ehr", "value": resource_id}],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "telecom": [{"system": "phone", "value": "(617) 495-2000"},
                        {"system": "email", "value": f"{given.lower()}@example.org"}],
            "gender": "female", "birthDate": birth_date,
            "address": [{"line": ["12 Elm St"], "city": "Boston", "state": "MA",
                         "postalCode": "02115"}]}


def _seed(base: str) -> None:
    """Ana Rivera twice (the second record without SSN, holding a document and messages),
    and two Lopez sisters sharing phone, address and birth date."""
    resources = [
        _patient("ana", "Ana", "Rivera", "1984-03-09", SSN),
        _patient("anna", "Anna", "Rivera", "1984-03-09"),
        _patient("maria", "Maria", "Lopez", "1950-02-02"),
        _patient("marta", "Marta", "Lopez", "1950-02-02"),
        {"resourceType": "DocumentReference", "id": "doc-1", "status": "current",
         "subject": {"reference": "Patient/anna"}, "description": "Blood panel",
         "date": "2024-05-01T10:00:00Z",
         "content": [{"attachment": {"contentType": "application/pdf", "title": "cbc.pdf",
                                     "data": base64.b64encode(PDF_BYTES).decode()}}]},
        {"resourceType": "Communication", "id": "msg-1", "status": "completed",
         "subject": {"reference": "Patient/anna"}, "recipient": [{"reference": "Patient/anna"}],
         "sent": "2024-05-02T09:00:05Z", "payload": [{"contentString": "Results are ready"}],
         "medium": [{"coding": [{"system": "urn:prm:message-channel", "code": "sms"}]}]},
    ]
    with httpx.Client(base_url=base, headers=FHIR_JSON, timeout=30) as http:
        for resource in resources:
            response = http.put(f"/fhir/{resource['resourceType']}/{resource['id']}",
                                json=resource)
            assert response.status_code == 201, response.text


@pytest.fixture
def server(tmp_path: Path, database_urls: dict[str, str]) -> Iterator[tuple[str, Engine]]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (.ci/run installs it)")
    data = tmp_path / "var"
    with running_server("sqlite", data, database_urls,
                        {"FHIR_MESSAGING_WORKER": "false"}) as running:
        _seed(running.base)
        engine = create_engine(f"sqlite:///{data / 'fhir.sqlite3'}")
        yield running.base, engine
        engine.dispose()


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert page.evaluate(LAYOUT_SHIFT) < 0.01, f"{name}: the layout shifted while loading"


def _row(engine: Engine, table: Any, column: str, key: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(table.c[column]).where(key)).scalar_one()


def test_review_merge_undo_and_dismiss_in_the_browser(server: tuple[str, Engine],
                                                      browser: Any) -> None:
    base, engine = server
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    # search, by keyboard: skip link first, then the form's fields in order
    page.goto(f"{base}/console")
    assert page.url == f"{base}/console/patients"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")  # the main region has the focus: the next Tab is its first field
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-name"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.type("rivera")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/patients?name=rivera**")
    assert page.locator("table.list tbody tr").count() == 2
    _shot(page, "search")

    # the patient page: SSN masked, the document and the message listed
    page.get_by_role("link", name="Rivera, Ana").first.click()
    page.wait_for_url("**/console/patients/ana")
    assert SSN not in page.content() and "•••-••-6789" in page.content()
    _shot(page, "patient")
    page.goto(f"{base}/console/patients/anna")
    assert page.get_by_role("link", name="Download Blood panel").count() == 1
    assert page.get_by_text("Results are ready").count() == 1

    # the queue: scan now, then both pairs
    page.get_by_role("link", name="Duplicates").click()
    page.get_by_role("button", name="Scan now").click()
    deadline = time.monotonic() + 30
    while page.locator("table.queue tbody tr").count() < 2:
        assert time.monotonic() < deadline, page.content()
        time.sleep(0.3)
        page.reload()
    _shot(page, "duplicates")

    # not a duplicate: the Lopez sisters leave the queue, for good
    page.get_by_role("button", name="Not a duplicate: Lopez, Maria and Lopez, Marta").click()
    page.wait_for_url("**dismissed=**")
    assert page.locator("table.queue tbody tr").count() == 1
    assert _row(engine, console_duplicate_dismissals, "second_id",
                console_duplicate_dismissals.c.first_id == "maria") == "marta"

    # compare the Riveras
    page.get_by_role("link", name="Compare Rivera, Ana and Rivera, Anna").click()
    page.wait_for_url("**/console/compare/**")
    assert page.locator("tr.outcome-agree").count() >= 4
    assert page.locator("tr.outcome-partial").count() >= 1
    _shot(page, "compare")

    # keep the record with the SSN: preview first, nothing changes
    page.get_by_label("Keep Rivera, Ana").check()
    page.get_by_role("button", name="Preview merge").click()
    page.wait_for_url("**/console/merge?**")
    assert page.get_by_text("Nothing has changed yet").count() == 1
    _shot(page, "merge-preview")
    assert _row(engine, patients, "merged_into_id", patients.c.id == "anna") is None

    # merge: the document moves to the survivor
    page.get_by_role("button", name="Merge Rivera, Anna into Rivera, Ana").click()
    page.wait_for_url("**/console/patients/ana?merged=**")
    assert page.get_by_text("Merge done").count() == 1
    _shot(page, "merged")
    assert _row(engine, patients, "merged_into_id", patients.c.id == "anna") == "ana"
    assert _row(engine, media_assets, "patient_id", media_assets.c.id == "doc-1") == "ana"

    # undo from the survivor's page
    page.get_by_role("button", name="Undo the merge of Patient/anna into this patient").click()
    page.wait_for_url("**/console/patients/ana?undone=**")
    assert page.get_by_text("Merge undone").count() == 1
    assert _row(engine, patients, "merged_into_id", patients.c.id == "anna") is None
    assert _row(engine, patients, "active", patients.c.id == "anna") is True
    assert _row(engine, media_assets, "patient_id", media_assets.c.id == "doc-1") == "anna"

    # a phone-width screen: the comparison fits, no sideways scrolling
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.goto(f"{base}/console/compare/ana/anna")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(phone, "compare-phone")
    phone.goto(f"{base}/console/patients/anna")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(phone, "patient-phone")
