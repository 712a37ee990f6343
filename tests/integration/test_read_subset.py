"""``_summary`` and ``_elements`` on read and vread (search.html#summary): the parts asked for,
marked SUBSETTED; ``_summary=count`` (a search's) refused before anything is read."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fhir_server.search.summary import SUBSETTED
from tests.factories import FHIR_JSON, issue_codes, patient


def _patient_url(client: TestClient) -> str:
    resource = patient(text={"status": "generated",
                             "div": '<div xmlns="http://www.w3.org/1999/xhtml">Ann</div>'},
                       communication=[{"language": {"text": "English"}}])
    created = client.post("/fhir/Patient", json=resource, headers=FHIR_JSON)
    assert created.status_code == 201, created.text
    return f"/fhir/Patient/{created.json()['id']}"


def test_summary_and_elements_on_read(client: TestClient) -> None:
    url = _patient_url(client)
    whole = client.get(url).json()
    assert "communication" in whole and "text" in whole
    summary = client.get(f"{url}?_summary=true").json()
    assert "communication" not in summary and "text" not in summary  # not summary elements
    assert summary["name"] == whole["name"] and SUBSETTED in summary["meta"]["tag"]
    text = client.get(f"{url}?_summary=text").json()
    assert set(text) == {"resourceType", "id", "meta", "text"}
    data = client.get(f"{url}?_summary=data").json()
    assert "text" not in data and data["communication"] == whole["communication"]
    elements = client.get(f"{url}?_elements=birthDate,gender").json()
    assert set(elements) == {"resourceType", "id", "meta", "birthDate", "gender"}
    assert client.get(f"{url}?_summary=false").json() == whole
    versioned = client.get(f"{url}/_history/1?_elements=gender").json()
    assert set(versioned) == {"resourceType", "id", "meta", "gender"}


def test_a_summary_a_read_cannot_give_is_400(client: TestClient) -> None:
    url = _patient_url(client)
    for value in ("count", "yes"):
        response = client.get(f"{url}?_summary={value}")
        assert response.status_code == 400, value
        assert issue_codes(response.json()) == ["invalid"]
