"""FHIR XML (https://hl7.org/fhir/R4/xml.html) through the HTTP API on both databases: the
official XML Patient examples are created from XML and read back in XML and JSON equal to the
official JSON; searches, history and errors answer in XML when asked; DTDs, entities and
malformed XML are refused with a 400 and write nothing; raw Binary bytes are untouched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree  # type: ignore[import-untyped]
from starlette.testclient import TestClient

from fhir_server.http.xml_format import xml_to_json
from tests.factories import without_server_elements

XML = "application/fhir+xml"
FHIR = "{http://hl7.org/fhir}"
EXAMPLES = {"patient-example.xml": "Patient-example.json",
            "patient-example-xds.xml": "Patient-xds.json",
            "patient-glossy-example.xml": "Patient-glossy.json"}


def _canonical(node: Any) -> Any:
    """JSON with the narrative compared as canonical XML (``&quot;`` and ``"`` are equal)."""
    if isinstance(node, dict):
        return {key: (etree.tostring(etree.fromstring(value), method="c14n")
                      if key == "div" else _canonical(value)) for key, value in node.items()}
    if isinstance(node, list):
        return [_canonical(value) for value in node]
    return node


def _root(response: Any) -> Any:
    assert response.headers["content-type"].startswith(XML), response.text
    return etree.fromstring(response.content)


@pytest.mark.parametrize("xml_file", sorted(EXAMPLES))
def test_official_xml_example_round_trips(client: TestClient, shared_data: Path,
                                          xml_file: str) -> None:
    body = (shared_data / "fhir-r4-examples" / "xml" / xml_file).read_bytes()
    official = json.loads((shared_data / "fhir-r4-examples" / EXAMPLES[xml_file]).read_text())

    created = client.post("/fhir/Patient", content=body,
                          headers={"Content-Type": XML, "Accept": XML})

    assert created.status_code == 201, created.text
    assert etree.QName(_root(created)).localname == "Patient"
    location = created.headers["location"].split("/_history")[0]
    as_json = client.get(location).json()
    assert _canonical(without_server_elements(as_json)) == _canonical(
        without_server_elements(official))
    as_xml = client.get(location, headers={"Accept": XML})
    read_back = json.loads(xml_to_json(as_xml.content))
    assert read_back.pop("meta")["versionId"] == as_json["meta"]["versionId"]
    assert read_back == {key: value for key, value in as_json.items() if key != "meta"}


def test_search_history_and_capabilities_answer_in_xml(client: TestClient,
                                                        shared_data: Path) -> None:
    body = (shared_data / "fhir-r4-examples" / "xml" / "patient-example.xml").read_bytes()
    client.post("/fhir/Patient", content=body, headers={"Content-Type": XML})

    bundle = _root(client.get("/fhir/Patient?family=Chalmers&_format=xml"))
    history = _root(client.get("/fhir/Patient/_history", headers={"Accept": "application/xml"}))
    metadata = _root(client.get("/fhir/metadata?_format=xml"))

    assert bundle.tag == f"{FHIR}Bundle"
    assert bundle.find(f"{FHIR}type").get("value") == "searchset"
    assert bundle.find(f"{FHIR}total").get("value") == "1"
    assert bundle.find(f"{FHIR}entry/{FHIR}resource/{FHIR}Patient") is not None
    self_link = [link.find(f"{FHIR}url").get("value") for link in bundle.iter(f"{FHIR}link")
                 if link.find(f"{FHIR}relation").get("value") == "self"]
    assert "_format=xml" in self_link[0]
    assert history.find(f"{FHIR}type").get("value") == "history"
    assert metadata.tag == f"{FHIR}CapabilityStatement"


def test_errors_answer_an_xml_operation_outcome(client: TestClient) -> None:
    response = client.get("/fhir/Patient/does-not-exist", headers={"Accept": XML})

    assert response.status_code == 404
    outcome = _root(response)
    assert outcome.tag == f"{FHIR}OperationOutcome"
    assert outcome.find(f"{FHIR}issue/{FHIR}code").get("value") == "not-found"


@pytest.mark.parametrize("body", [
    (b'<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY x "Chalmers">]>'
     b'<Patient xmlns="http://hl7.org/fhir"><name><family value="&x;"/></name></Patient>'),
    (b'<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     b'<Patient xmlns="http://hl7.org/fhir"><name><family value="&x;"/></name></Patient>'),
    b'<Patient xmlns="http://hl7.org/fhir"><name><family value="A"/></name>',
    b'<Patient><active value="true"/></Patient>',
    b'<Banana xmlns="http://hl7.org/fhir"/>',
    b'<Patient xmlns="http://hl7.org/fhir"><active value="perhaps"/></Patient>',
    b'<Patient xmlns="http://hl7.org/fhir"><colour value="blue"/></Patient>',
])
def test_unusable_xml_is_400_and_writes_nothing(client: TestClient, body: bytes) -> None:
    response = client.post("/fhir/Patient", content=body,
                           headers={"Content-Type": XML, "Accept": XML})

    assert response.status_code == 400, response.text
    assert _root(response).tag == f"{FHIR}OperationOutcome"
    assert client.get("/fhir/Patient").json()["total"] == 0


def test_binary_bytes_are_untouched_and_its_resource_reads_in_xml(client: TestClient) -> None:
    pdf = b"%PDF-1.7\n" + b"x" * 100
    created = client.post("/fhir/Binary", content=pdf, headers={"Content-Type": "application/pdf"})
    assert created.status_code == 201, created.text
    location = created.headers["location"].split("/_history")[0]

    raw = client.get(location)
    as_xml = client.get(location, headers={"Accept": XML})

    assert raw.content == pdf and raw.headers["content-type"] == "application/pdf"
    binary = _root(as_xml)
    assert binary.tag == f"{FHIR}Binary"
    assert binary.find(f"{FHIR}contentType").get("value") == "application/pdf"


def test_update_and_messaging_accept_xml(client: TestClient) -> None:
    created = client.post("/fhir/Patient", headers={"Content-Type": XML}, content=(
        b'<Patient xmlns="http://hl7.org/fhir"><name><family value="Hopper"/></name></Patient>'))
    patient_id = created.json()["id"]
    updated = client.put(f"/fhir/Patient/{patient_id}", headers={"Content-Type": "text/xml"},
                         content=(f'<Patient xmlns="http://hl7.org/fhir"><id value="{patient_id}"/>'
                                  '<active value="true"/><name><family value="Hopper"/></name>'
                                  '</Patient>').encode())
    request = client.post("/fhir/CommunicationRequest", headers={"Content-Type": XML}, content=(
        b'<CommunicationRequest xmlns="http://hl7.org/fhir"><status value="draft"/>'
        b'<payload><contentString value="Hello"/></payload></CommunicationRequest>'))

    assert updated.status_code == 200, updated.text
    assert updated.json()["active"] is True
    assert request.status_code == 201, request.text
    assert request.json()["payload"] == [{"contentString": "Hello"}]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda text: (
        f'<Patient xmlns="http://hl7.org/fhir">{text}</Patient>').encode()),
    st.sampled_from(["active", "gender", "birthDate", "name", "telecom", "id"]).flatmap(
        lambda element: st.text(max_size=30).map(lambda value: (
            f'<Patient xmlns="http://hl7.org/fhir"><{element} value="{value}"/></Patient>'
        ).encode(errors="replace")))))
def test_any_xml_body_is_answered_without_a_500(client: TestClient, body: bytes) -> None:
    response = client.post("/fhir/Patient", content=body, headers={"Content-Type": XML})
    assert response.status_code in (201, 400, 422), response.text
