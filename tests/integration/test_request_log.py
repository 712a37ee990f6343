"""The access log: one JSON line per request on ``fhir_server.access``, with the route template
and never the URL, ids, search values or anything a patient is."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_server.http.request_log import ACCESS_LOGGER, access_logger, configure_access_log
from tests.factories import FHIR_JSON, patient
from tests.tokens import TokenIssuer

FIELDS = {"time", "request_id", "method", "route", "status", "duration_ms", "client_id"}
NAME, PHONE = "Quixotic", "(617) 555-0199"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(record.getMessage()) for record in self.records]

    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    level = access_logger.level
    access_logger.setLevel(logging.INFO)
    access_logger.addHandler(handler)
    yield handler
    access_logger.removeHandler(handler)
    access_logger.setLevel(level)


def _stored(client: TestClient) -> dict[str, Any]:
    sent = patient(name=[{"family": NAME, "given": ["Zebulon"]}],
                   telecom=[{"system": "phone", "value": PHONE}])
    response = client.post("/fhir/Patient", json=sent, headers=FHIR_JSON)
    assert response.status_code == 201
    return dict(response.json())


def test_read_writes_one_line_with_the_route_template(client: TestClient, lines: Lines) -> None:
    stored = _stored(client)
    lines.records.clear()
    response = client.get(f"/fhir/Patient/{stored['id']}")
    [line] = lines.parsed()
    assert set(line) == FIELDS
    assert line["method"] == "GET" and line["status"] == 200
    assert line["route"] == "/fhir/Patient/{resource_id}"
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
    assert response.headers["x-request-id"] == line["request_id"]
    assert isinstance(line["duration_ms"], float | int) and line["duration_ms"] >= 0
    assert line["client_id"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert lines.records[0].name == ACCESS_LOGGER and lines.records[0].levelno == logging.INFO


def test_lines_carry_no_name_phone_id_or_search_value(client: TestClient, lines: Lines) -> None:
    stored = _stored(client)
    client.get(f"/fhir/Patient?family={NAME}&phone={PHONE}")
    client.get(f"/fhir/Patient/{stored['id']}/_history/1")
    client.put(f"/fhir/Patient/{stored['id']}", json={**stored, "gender": "other"},
               headers=FHIR_JSON)
    client.get(f"/fhir/Patient/{stored['id']}/$match")
    routes = [line["route"] for line in lines.parsed()]
    assert routes == ["/fhir/Patient", "/fhir/Patient",
                      "/fhir/Patient/{resource_id}/_history/{version_id}",
                      "/fhir/Patient/{resource_id}", "/fhir/Patient/{resource_id}/$match"]
    text = lines.text()
    for secret in (NAME, "Zebulon", PHONE, "555-0199", "5550199", stored["id"]):
        assert secret not in text


def test_client_request_id_is_kept_and_echoed(client: TestClient, lines: Lines) -> None:
    response = client.get("/fhir/metadata", headers={"X-Request-Id": "trace-42.a:b"})
    assert response.headers["x-request-id"] == "trace-42.a:b"
    assert lines.parsed()[0]["request_id"] == "trace-42.a:b"


@pytest.mark.parametrize("sent", ["has spaces", "x" * 129, "name=Quixotic;"])
def test_unsafe_request_id_is_replaced(client: TestClient, lines: Lines, sent: str) -> None:
    response = client.get("/fhir/metadata", headers={"X-Request-Id": sent})
    [line] = lines.parsed()
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
    assert response.headers["x-request-id"] == line["request_id"]
    assert sent not in lines.text()


def test_client_id_header_is_logged_when_a_token(client: TestClient, lines: Lines) -> None:
    client.get("/fhir/metadata", headers={"X-Client-Id": "scheduler-app"})
    client.get("/fhir/metadata", headers={"X-Client-Id": "Ana Rivera"})
    assert [line["client_id"] for line in lines.parsed()] == ["scheduler-app", None]


def test_unknown_type_keeps_the_template_placeholder(client: TestClient, lines: Lines) -> None:
    response = client.get(f"/fhir/{NAME}/123-45-6789")
    assert response.status_code == 404
    [line] = lines.parsed()
    assert line["route"] == "/fhir/{resource_type}/{resource_id}"
    assert NAME not in lines.text()
    # The time, the random request id and the duration may hold "6789" by chance: left out.
    chosen_by_the_client = {key: value for key, value in line.items()
                            if key not in {"time", "request_id", "duration_ms"}}
    assert set(line) <= FIELDS and "6789" not in json.dumps(chosen_by_the_client)


def test_unrouted_path_logs_a_null_route(client: TestClient, lines: Lines) -> None:
    client.get(f"/nowhere/{NAME}")
    [line] = lines.parsed()
    assert line["route"] is None and line["status"] == 404


def test_wrong_method_logs_the_route_and_405(client: TestClient, lines: Lines) -> None:
    client.delete("/fhir/metadata")
    [line] = lines.parsed()
    assert (line["route"], line["status"]) == ("/fhir/metadata", 405)


def test_xml_body_request_keeps_its_route(client: TestClient, lines: Lines) -> None:
    body = (b'<Patient xmlns="http://hl7.org/fhir"><name><family value="' + NAME.encode()
            + b'"/></name></Patient>')
    response = client.post("/fhir/Patient", content=body,
                           headers={"Content-Type": "application/fhir+xml"})
    assert response.status_code == 201
    [line] = lines.parsed()
    assert (line["route"], line["status"]) == ("/fhir/Patient", 201)
    assert NAME not in lines.text()


def test_health_is_logged_too(client: TestClient, lines: Lines) -> None:
    client.get("/health")
    assert lines.parsed()[0]["route"] == "/health"


def test_log_level_warning_silences_access_lines(client: TestClient, lines: Lines) -> None:
    configure_access_log("warning")
    try:
        client.get("/fhir/metadata")
    finally:
        for handler in [h for h in access_logger.handlers if getattr(h, "fhir_access", False)]:
            access_logger.removeHandler(handler)
        access_logger.propagate = True
    assert lines.records == []


def test_unexpected_error_logs_500(client: TestClient, lines: Lines,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"failure mentioning {NAME}")

    services = client.app.state.services  # type: ignore[attr-defined]
    monkeypatch.setattr(services.patients, "read", broken)
    response = client.get("/fhir/Patient/abc")
    assert response.status_code == 500
    assert response.json()["resourceType"] == "OperationOutcome"
    [line] = lines.parsed()
    assert (line["route"], line["status"]) == ("/fhir/Patient/{resource_id}", 500)
    assert response.headers["x-request-id"] == line["request_id"]  # the id to find it by
    assert NAME not in lines.text() and NAME not in response.text


def test_verified_token_client_wins_over_the_header(secured_client: TestClient,
                                                    token_issuer: TokenIssuer,
                                                    lines: Lines) -> None:
    headers = token_issuer.headers("user/Patient.rs", client_id="front-desk")
    secured_client.get("/fhir/Patient", headers=headers | {"X-Client-Id": "pretender"})
    assert lines.parsed()[-1]["client_id"] == "front-desk"
