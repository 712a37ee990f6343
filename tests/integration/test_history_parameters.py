"""History parameters (http.html#history). ``_at``: only the versions that were current at some
point of the period the value names (a year, a month, a day, a minute, a second or an exact
instant), on instance and type history; with ``_since`` both apply; a value that is not a date
is 400. Parameters history does not take: 400 under ``Prefer: handling=strict``, else ignored
and left out of the links."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import FHIR_JSON, coverage, patient


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _text(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _versions(client: TestClient, path: str, **params: str) -> list[tuple[str, str]]:
    response = client.get(f"{path}/_history", params=params)
    assert response.status_code == 200, response.text
    return [(entry["fullUrl"].rsplit("/", 1)[-1], entry["response"]["etag"])
            for entry in response.json().get("entry", [])]


def _three_versions(client: TestClient, resource: dict[str, Any]) -> list[datetime]:
    """Versions 1-3 of ``resource`` a few milliseconds apart; their lastUpdated."""
    path = f"/fhir/{resource['resourceType']}/{resource['id']}"
    moments = []
    for gender_or_status in range(3):
        body = resource | ({"gender": ("female", "male", "other")[gender_or_status]}
                           if resource["resourceType"] == "Patient" else
                           {"status": ("active", "cancelled", "active")[gender_or_status]})
        response = client.put(path, json=body, headers=FHIR_JSON)
        assert response.status_code in (200, 201), response.text
        moments.append(_instant(response.json()["meta"]["lastUpdated"]))
        time.sleep(0.02)
    return moments


@pytest.mark.parametrize("make", [lambda: patient(id="h-1"),
                                  lambda: coverage(id="h-1")])
def test_at_keeps_the_versions_current_then(client: TestClient, make: Any) -> None:
    resource = make()
    if resource["resourceType"] == "Coverage":
        client.put("/fhir/Patient/p-1", json=patient(id="p-1"), headers=FHIR_JSON)
    first, second, third = _three_versions(client, resource)
    path = f"/fhir/{resource['resourceType']}/h-1"
    ms = timedelta(milliseconds=1)

    # an instant inside version 1's life, version 2's first instant, and after version 3
    assert _versions(client, path, _at=_text(first + ms)) == [("h-1", 'W/"1"')]
    assert _versions(client, path, _at=_text(second)) == [("h-1", 'W/"2"')]
    assert _versions(client, path, _at=_text(third + 10 * ms)) == [("h-1", 'W/"3"')]
    # before the resource existed: nothing
    assert _versions(client, path, _at=_text(first - timedelta(days=1))) == []
    # a whole year covers every version, newest first
    assert _versions(client, path, _at=str(first.year)) == [
        ("h-1", 'W/"3"'), ("h-1", 'W/"2"'), ("h-1", 'W/"1"')]
    # with _since: made since version 2, and current this year
    assert _versions(client, path, _at=str(first.year), _since=_text(second)) == [
        ("h-1", 'W/"3"'), ("h-1", 'W/"2"')]


def test_at_on_type_history(client: TestClient) -> None:
    first, _, _ = _three_versions(client, patient(id="h-1"))
    client.put("/fhir/Patient/h-2", json=patient(id="h-2"), headers=FHIR_JSON)
    at_first = _text(first + timedelta(milliseconds=1))
    assert _versions(client, "/fhir/Patient", _at=at_first) == [("h-1", 'W/"1"')]
    kept = client.get("/fhir/Patient/_history", params={"_at": at_first}).json()
    assert kept["total"] == 1
    assert any("_at=" in link["url"] for link in kept["link"] if link["relation"] == "self")


def test_a_deleted_resource_is_current_as_deleted(client: TestClient) -> None:
    created = client.put("/fhir/Patient/h-1", json=patient(id="h-1"), headers=FHIR_JSON)
    time.sleep(0.02)
    assert client.delete("/fhir/Patient/h-1").status_code == 204
    time.sleep(0.02)
    after = _instant(created.json()["meta"]["lastUpdated"]) + timedelta(seconds=5)
    response = client.get("/fhir/Patient/h-1/_history", params={"_at": _text(after)})
    entries = response.json()["entry"]
    assert [entry["request"]["method"] for entry in entries] == ["DELETE"]


@pytest.mark.parametrize("value", ["yesterday", "ge2024-01-01", "2024-13-01", ""])
def test_a_bad_at_is_400(client: TestClient, value: str) -> None:
    client.put("/fhir/Patient/h-1", json=patient(id="h-1"), headers=FHIR_JSON)
    response = client.get("/fhir/Patient/h-1/_history", params={"_at": value})
    assert response.status_code == 400, response.text
    assert "_at" in response.json()["issue"][0]["diagnostics"]


def test_strict_handling_refuses_what_history_does_not_take(client: TestClient) -> None:
    client.put("/fhir/Patient/h-1", json=patient(id="h-1"), headers=FHIR_JSON)
    refused = client.get("/fhir/Patient/h-1/_history", params={"_list": "x", "colour": "red"},
                         headers={"Prefer": "handling=strict"})
    assert refused.status_code == 400, refused.text
    assert "_list, colour" in refused.json()["issue"][0]["diagnostics"]
    lenient = client.get("/fhir/Patient/_history", params={"colour": "red", "_count": "5"})
    assert lenient.status_code == 200, lenient.text
    assert lenient.json()["total"] == 1
    assert all("colour" not in link["url"] for link in lenient.json()["link"])
