"""The message template API (``/messaging/templates``) on SQLite and PostgreSQL: create, list,
get, update, deactivate, render preview, and refusals naming the field at fault."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

URL = "/messaging/templates"


def template(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "appointment-reminder", "channel": "sms", "category": "reminder",
        "body": "Hi {patient_name}, your visit is on {date} at {time}.",
        "description": "Day-before reminder", "variables": ["date", "patient_name", "time"]}
    body.update(changes)
    return body


def _create(client: TestClient, **changes: Any) -> dict[str, Any]:
    response = client.post(URL, json=template(**changes))
    assert response.status_code == 201, response.text
    return dict(response.json())


def _issue(response: Any) -> dict[str, Any]:
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return dict(outcome["issue"][0])


def test_create_answers_201_with_location(client: TestClient) -> None:
    response = client.post(URL, json=template())
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"http://testserver{URL}/appointment-reminder"
    created = response.json()
    assert created["active"] is True
    assert created["variables"] == ["date", "patient_name", "time"]
    assert created["created"] == created["updated"]


def test_create_without_variables_declares_placeholders(client: TestClient) -> None:
    created = _create(client, variables=None)
    assert created["variables"] == ["date", "patient_name", "time"]


def test_get_by_name(client: TestClient) -> None:
    _create(client)
    read = client.get(f"{URL}/appointment-reminder")
    assert read.status_code == 200
    assert read.json()["body"] == template()["body"]


def test_get_unknown_name_answers_404(client: TestClient) -> None:
    response = client.get(f"{URL}/nope")
    assert response.status_code == 404
    assert "nope" in _issue(response)["diagnostics"]


def test_list_filters_and_orders_by_name(client: TestClient) -> None:
    _create(client, name="b-sms")
    _create(client, name="a-mail", channel="email", subject="Visit on {date}",
            category="confirmation")
    _create(client, name="c-sms", category="alert")
    client.delete(f"{URL}/c-sms")
    names = [item["name"] for item in client.get(URL).json()["templates"]]
    assert names == ["a-mail", "b-sms", "c-sms"]
    assert [item["name"] for item in client.get(
        URL, params={"channel": "sms", "active": "true"}).json()["templates"]] == ["b-sms"]
    assert [item["name"] for item in client.get(
        URL, params={"category": "confirmation"}).json()["templates"]] == ["a-mail"]
    assert [item["name"] for item in client.get(
        URL, params={"active": "false"}).json()["templates"]] == ["c-sms"]


def test_list_bad_filter_answers_400(client: TestClient) -> None:
    response = client.get(URL, params={"channel": "fax"})
    assert response.status_code == 400
    assert _issue(response)["expression"] == ["channel"]


def test_update_replaces_fields(client: TestClient) -> None:
    created = _create(client)
    response = client.put(f"{URL}/appointment-reminder",
                          json=template(body="See you {date}", variables=["date"],
                                        description=None, channel="whatsapp"))
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["channel"], updated["body"], updated["description"]) == (
        "whatsapp", "See you {date}", None)
    assert updated["id"] == created["id"]
    assert updated["created"] == created["created"]


def test_update_renames_when_free(client: TestClient) -> None:
    _create(client)
    response = client.put(f"{URL}/appointment-reminder", json=template(name="reminder-2"))
    assert response.status_code == 200, response.text
    assert client.get(f"{URL}/reminder-2").status_code == 200
    assert client.get(f"{URL}/appointment-reminder").status_code == 404


def test_update_to_taken_name_answers_409(client: TestClient) -> None:
    _create(client)
    _create(client, name="other")
    response = client.put(f"{URL}/other", json=template())
    assert response.status_code == 409
    assert _issue(response)["expression"] == ["name"]


def test_update_unknown_answers_404(client: TestClient) -> None:
    assert client.put(f"{URL}/nope", json=template(name="nope")).status_code == 404


def test_deactivate_keeps_template(client: TestClient) -> None:
    _create(client)
    response = client.delete(f"{URL}/appointment-reminder")
    assert response.status_code == 200
    assert response.json()["active"] is False
    assert client.get(f"{URL}/appointment-reminder").json()["active"] is False


def test_duplicate_name_answers_409(client: TestClient) -> None:
    _create(client)
    response = client.post(URL, json=template())
    assert response.status_code == 409
    issue = _issue(response)
    assert issue["code"] == "conflict"
    assert issue["expression"] == ["name"]


def test_render_preview_reports_missing_and_unknown(client: TestClient) -> None:
    _create(client)
    response = client.post(f"{URL}/appointment-reminder/$render",
                           json={"variables": {"patient_name": "Ann", "date": "1 May",
                                               "room": "4"}})
    assert response.status_code == 200, response.text
    assert response.json() == {"subject": None,
                               "text": "Hi Ann, your visit is on 1 May at {time}.",
                               "missing": ["time"], "unknown": ["room"]}


def test_render_email_subject(client: TestClient) -> None:
    _create(client, name="mail", channel="email", subject="Visit {date}")
    response = client.post(f"{URL}/mail/$render", json={"variables": {
        "patient_name": "Ann", "date": "1 May", "time": "9:00"}})
    assert response.json()["subject"] == "Visit 1 May"
    assert response.json()["missing"] == []


def test_render_non_string_value_answers_400(client: TestClient) -> None:
    _create(client)
    response = client.post(f"{URL}/appointment-reminder/$render", json={"variables": {"date": 1}})
    assert response.status_code == 400
    assert _issue(response)["expression"] == ["variables.date"]


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"name": "bad name!"}, "name", "bad name!"),
    ({"name": "x" * 101}, "name", "template name"),
    ({"channel": "fax"}, "channel", "fax"),
    ({"category": "spam"}, "category", "spam"),
    ({"body": "Hi {patient_name"}, "body", "unbalanced"),
    ({"body": "Hi {patient_name.__class__}"}, "body", "{patient_name.__class__}"),
    ({"body": "Hi {0}"}, "body", "{0}"),
    ({"channel": "email"}, "subject", "subject"),
    ({"channel": "email", "subject": "On {date!r}"}, "subject", "{date!r}"),
    ({"variables": ["date"]}, "variables", "patient_name, time"),
    ({"variables": ["date", "patient_name", "time", "spare"]}, "variables", "spare"),
    ({"variables": "date"}, "variables", "list"),
    ({"active": "yes"}, "active", "true or false"),
    ({"colour": "red"}, "colour", "unknown"),
])
def test_invalid_template_answers_400_naming_field(
        client: TestClient, changes: dict[str, Any], field: str, words: str) -> None:
    response = client.post(URL, json=template(**changes))
    assert response.status_code == 400, response.text
    issue = _issue(response)
    assert issue["expression"] == [field]
    assert words in issue["diagnostics"]


def test_body_not_json_answers_400(client: TestClient) -> None:
    response = client.post(URL, content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert _issue(response)["code"] == "invalid"
