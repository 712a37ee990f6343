"""``_pretty=true`` indents FHIR JSON answers (reads, searches, errors) and leaves every other
answer as it was: compact JSON without it, raw Binary bytes, XML, HEAD."""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient

from tests.factories import FHIR_JSON, PDF_BYTES, patient


def _indented(text: str) -> bool:
    return text.startswith('{\n  "resourceType"')


def test_pretty_true_indents_fhir_json_answers(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()
    url = f"/fhir/Patient/{created['id']}"
    for path in (url, "/fhir/Patient?_count=5", "/fhir/Patient/unknown-id", "/fhir/metadata"):
        pretty = client.get(f"{path}{'&' if '?' in path else '?'}_pretty=true")
        compact = client.get(path)
        assert _indented(pretty.text), path
        assert not _indented(compact.text), path
        assert pretty.status_code == compact.status_code
        assert int(pretty.headers["content-length"]) == len(pretty.content)
        if pretty.status_code == 200 and "metadata" not in path:
            assert orjson.loads(pretty.content)["resourceType"] == \
                orjson.loads(compact.content)["resourceType"]
    assert not _indented(client.get(f"{url}?_pretty=false").text)


def test_other_answers_pass_through(client: TestClient) -> None:
    binary = client.post("/fhir/Binary", content=PDF_BYTES,
                         headers={"Content-Type": "application/pdf"}).json()
    raw = client.get(f"/fhir/Binary/{binary['id']}?_pretty=true")
    assert raw.content == PDF_BYTES
    created = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()
    xml = client.get(f"/fhir/Patient/{created['id']}?_pretty=true&_format=xml")
    assert xml.text.startswith("<?xml") or xml.text.startswith("<Patient")
    head = client.head(f"/fhir/Patient/{created['id']}?_pretty=true")
    assert head.status_code == 200
