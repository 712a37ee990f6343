"""The console's actions over HTTP on SQLite and PostgreSQL, checked in the database: merge with
its preview, undo from the survivor's page, 'not a duplicate' for good, the duplicates queue
from the scan file, 'scan now', CSRF, and the access checks and audit records they make."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from fhir_server.console import routes
from fhir_server.operations.match_scan import DuplicatePair, write_pairs
from fhir_server.security import access
from fhir_server.settings import Settings
from storage.console_tables import console_duplicate_dismissals
from storage.media_tables import media_assets
from storage.tables import patients
from tests.integration.console_helpers import csrf, duplicate_pair, person, post_form, put


def _merged_into(engine: Engine, patient_id: str) -> str | None:
    with engine.connect() as connection:
        value = connection.execute(select(patients.c.merged_into_id).where(
            patients.c.id == patient_id)).scalar_one()
    return str(value) if value is not None else None


def _document_patient(engine: Engine) -> str | None:
    with engine.connect() as connection:
        value = connection.execute(select(media_assets.c.patient_id).where(
            media_assets.c.id == "doc-b")).scalar_one()
    return str(value) if value is not None else None


@pytest.fixture
def audited(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], bool]]:
    """The operations the console authorises and records, in order."""
    calls: list[tuple[str, list[str], bool]] = []

    async def record(request: Any, operation: str, *, entities: Any, succeeded: bool) -> None:
        calls.append((operation, list(entities), succeeded))

    monkeypatch.setattr(routes, "audit_operation", record)
    monkeypatch.setattr(access, "audit_operation", record)  # what run_operation records with
    return calls


def test_merge_preview_changes_nothing(client: TestClient, engine: Engine) -> None:
    duplicate_pair(client)
    page = client.get("/console/merge?target=pa&pair=pa,pb")
    assert page.status_code == 200
    assert "Nothing has changed yet" in page.text
    assert "<th scope=\"row\" data-label=\"Kind\">Documents</th><td class=\"num\" " \
        "data-label=\"Resources\">1</td>" in page.text
    assert "Merge Rivera, Anna into Rivera, Ana" in page.text
    assert _merged_into(engine, "pb") is None and _document_patient(engine) == "pb"


def test_merge_then_undo_from_the_survivor_page(client: TestClient, engine: Engine,
                                                audited: list[Any]) -> None:
    duplicate_pair(client)
    merged = post_form(client, "/console/merge", source="pb", target="pa")
    assert merged.status_code == 303
    assert merged.headers["location"].startswith("/console/patients/pa?merged=")
    assert _merged_into(engine, "pb") == "pa" and _document_patient(engine) == "pa"
    survivor = client.get(merged.headers["location"]).text
    assert "Merge done" in survivor and "Undo merge" in survivor
    merge_id = merged.headers["location"].split("merged=")[1]
    undone = post_form(client, "/console/patients/pa/unmerge", merge=merge_id)
    assert undone.status_code == 303
    assert _merged_into(engine, "pb") is None and _document_patient(engine) == "pb"
    assert "Undone" in client.get("/console/patients/pa").text
    assert [(operation, succeeded) for operation, _, succeeded in audited
            if operation != "Patient/$match"] == [
        ("Patient/$merge", True), ("Patient/$unmerge", True)]
    assert sorted(audited[-1][1]) == ["Patient/pa", "Patient/pb"]


def test_refused_merge_is_shown_with_its_reason(client: TestClient) -> None:
    duplicate_pair(client)
    assert post_form(client, "/console/merge", source="pb", target="pa").status_code == 303
    again = post_form(client, "/console/merge", source="pb", target="pa")
    assert again.status_code == 422
    assert "already merged" in again.text


def test_dismissal_is_audited(client: TestClient, audited: list[Any]) -> None:
    duplicate_pair(client)
    post_form(client, "/console/duplicates/dismiss", first="pa", second="pb")
    assert audited[-1] == ("Patient/$not-a-duplicate", ["Patient/pa", "Patient/pb"], True)


def test_forms_without_the_csrf_token_change_nothing(client: TestClient,
                                                     engine: Engine) -> None:
    duplicate_pair(client)
    csrf(client)  # the cookie is set; the token is left out or forged below
    for fields in ({}, {"csrf": "forged"}):
        response = client.post("/console/merge", data={"source": "pb", "target": "pa",
                                                         **fields}, follow_redirects=False)
        assert response.status_code == 403
    assert _merged_into(engine, "pb") is None


def test_merge_without_the_merge_permission_is_forbidden(
        client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_server.errors import Forbidden

    def refuse(request: Any, operation: str, patient_ids: Any = ()) -> None:
        if operation == "Patient/$merge":
            raise Forbidden("user/Patient.$merge is needed")

    monkeypatch.setattr(access, "authorize_operation", refuse)  # run_operation asks it
    duplicate_pair(client)
    response = post_form(client, "/console/merge", source="pb", target="pa")
    assert response.status_code == 403 and "user/Patient.$merge" in response.text
    assert _merged_into(engine, "pb") is None


def _scan_file(settings: Settings, *pairs: DuplicatePair) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    write_pairs(list(pairs), settings.data_dir / "match-scan.csv")


def test_queue_shows_scan_pairs_best_first_without_resolved_ones(
        client: TestClient, settings: Settings) -> None:
    duplicate_pair(client)
    put(client, person("pc", given="Maria", family="Lopez", birth_date="1950-02-02",
                       ssn=None))
    put(client, person("pd", given="Mario", family="Lopez", birth_date="1950-02-02",
                       ssn=None))
    put(client, person("pe", given="Ann", family="Rivera", ssn=None))
    _scan_file(settings, DuplicatePair("pc", "pd", 0.95, "probable", "given partial (+2.0)"),
               DuplicatePair("pa", "pb", 0.999, "probable", "family agree (+7.7)"),
               DuplicatePair("pb", "pe", 0.93, "probable", "given partial (+1.0)"))
    assert post_form(client, "/console/merge", source="pe", target="pb").status_code == 303
    page = client.get("/console/duplicates").text
    compares = [line.split('"')[0] for line in page.split('href="/console/compare/')[1:]]
    assert compares == ["pa/pb", "pc/pd"]
    assert "3 in the scan" in page


def test_not_a_duplicate_removes_the_pair_for_good(client: TestClient, settings: Settings,
                                                   engine: Engine) -> None:
    duplicate_pair(client)
    _scan_file(settings, DuplicatePair("pa", "pb", 0.999, "probable", ""))
    assert "/console/compare/pa/pb" in client.get("/console/duplicates").text
    dismissed = post_form(client, "/console/duplicates/dismiss", first="pb", second="pa",
                          next="/console/duplicates")
    assert dismissed.status_code == 303
    assert "/console/compare/pa/pb" not in client.get(dismissed.headers["location"]).text
    with engine.connect() as connection:
        rows = connection.execute(select(console_duplicate_dismissals.c.first_id,
                                         console_duplicate_dismissals.c.second_id)).all()
    assert [tuple(row) for row in rows] == [("pa", "pb")]
    _scan_file(settings, DuplicatePair("pa", "pb", 0.999, "probable", ""))  # a new scan
    assert "/console/compare/pa/pb" not in client.get("/console/duplicates").text
    assert "Dismissed as not a duplicate" in client.get("/console/compare/pa/pb").text
    assert "/console/compare/pa/pb" not in client.get("/console/patients/pa").text


def test_scan_now_fills_the_queue(client: TestClient, settings: Settings) -> None:
    duplicate_pair(client)
    assert "No scan yet" in client.get("/console/duplicates").text
    assert post_form(client, "/console/duplicates/scan").status_code == 303
    deadline = time.monotonic() + 20
    while "is running" in (page := client.get("/console/duplicates").text):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "The scan found 1 pairs" in page and "/console/compare/pa/pb" in page
    assert Path(settings.data_dir / "match-scan.csv").read_text().startswith(
        "first,second,score,grade,reasons")
