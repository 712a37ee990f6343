"""``GET /metrics``: Prometheus text that prometheus_client's own parser reads, with requests by
route template, pools, outbox messages by channel and state, dispatcher lag, blob bytes and
$match figures."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy.engine import Engine

from storage.messaging_tables import message_deliveries
from storage.stored import now
from tests.factories import FHIR_JSON, patient

PDF = b"%PDF-1.7\n" + b"x" * 1000


def _scrape(client: TestClient) -> dict[str, list[Sample]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family.samples
            for family in text_string_to_metric_families(response.text)}


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_requests_are_counted_by_route_template_and_status(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()
    client.get(f"/fhir/Patient/{created['id']}")
    client.get(f"/fhir/Patient/{created['id']}")
    client.get("/fhir/Patient/does-not-exist")
    families = _scrape(client)
    requests = families["fhir_http_requests"]
    read = {"method": "GET", "route": "/fhir/Patient/{resource_id}", "resource_type": "Patient"}
    assert _value(requests, "fhir_http_requests_total", **read, status="200") == 2
    assert _value(requests, "fhir_http_requests_total", **read, status="404") == 1
    assert _value(requests, "fhir_http_requests_total", method="POST", route="/fhir/Patient",
                  status="201") == 1
    latency = families["fhir_http_request_duration_seconds"]
    assert _value(latency, "fhir_http_request_duration_seconds_count", **read,
                  status="200") == 2
    assert _value(latency, "fhir_http_request_duration_seconds_bucket", **read, status="200",
                  le="+Inf") == 2
    assert _value(latency, "fhir_http_request_duration_seconds_sum", **read, status="200") > 0


def test_no_label_holds_an_id_or_a_client_typed_value(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()
    client.get("/fhir/Patient?family=Rivera&birthdate=1984-03-09")
    client.get("/fhir/AnaRivera/123")
    client.request("BREW", "/fhir/metadata")
    text = client.get("/metrics").text
    for value in (created["id"], "Rivera", "1984-03-09", "AnaRivera", "BREW"):
        assert value not in text
    requests = _scrape(client)["fhir_http_requests"]
    assert _value(requests, "fhir_http_requests_total", route="/fhir/{resource_type}/{resource_id}",
                  resource_type="", status="404") == 1
    assert _value(requests, "fhir_http_requests_total", method="other",
                  route="/fhir/metadata") == 1


def test_pool_usage_is_reported(client: TestClient, backend: str) -> None:
    families = _scrape(client)
    pools = {s.labels["pool"] for s in families["fhir_db_pool_connections"]}
    assert "sqlalchemy" in pools
    if backend == "postgresql":
        assert "psycopg" in pools
        assert _value(families["fhir_db_pool_connections"], "fhir_db_pool_connections",
                      pool="psycopg", state="max") == 10
    assert _value(families["fhir_metrics_database_up"], "fhir_metrics_database_up") == 1


def test_messages_by_channel_and_state_and_dispatcher_lag(client: TestClient,
                                                          engine: Engine) -> None:
    moment = now()
    rows = [("c1", "sms", "queued", moment - timedelta(seconds=120)),
            ("c2", "sms", "queued", moment + timedelta(hours=1)),
            ("c3", "sms", "failed", moment), ("c4", "email", "sent", moment)]
    with engine.begin() as connection:
        connection.execute(message_deliveries.insert(), [{
            "communication_id": key, "request_id": "r1", "channel": channel, "address": "a",
            "body": "b", "state": state, "attempts": 0, "next_attempt_at": due,
            "idempotency_key": key, "created_at": moment} for key, channel, state, due in rows])
    families = _scrape(client)
    messages = families["fhir_messages"]
    assert _value(messages, "fhir_messages", channel="sms", state="queued") == 2
    assert _value(messages, "fhir_messages", channel="sms", state="failed") == 1
    assert _value(messages, "fhir_messages", channel="email", state="sent") == 1
    lag = _value(families["fhir_dispatcher_lag_seconds"], "fhir_dispatcher_lag_seconds")
    assert 119 < lag < 300


def test_dispatcher_lag_is_zero_with_nothing_due(client: TestClient) -> None:
    families = _scrape(client)
    assert _value(families["fhir_dispatcher_lag_seconds"], "fhir_dispatcher_lag_seconds") == 0
    assert families["fhir_messages"] == []


def test_blob_bytes_count_stored_files(client: TestClient) -> None:
    for data in (PDF, PDF, PDF + b"y"):  # the same bytes twice are stored once
        response = client.post("/fhir/Binary", content=data,
                               headers={"Content-Type": "application/pdf"})
        assert response.status_code == 201
    families = _scrape(client)
    assert _value(families["fhir_blob_bytes"], "fhir_blob_bytes") == 2 * len(PDF) + 1
    assert _value(families["fhir_blobs"], "fhir_blobs") == 2


def test_match_latency_and_candidates_scored(client: TestClient) -> None:
    for number in range(3):
        stored = patient(identifier=[{"system": "urn:example:ehr", "value": f"E-{number}"}])
        assert client.post("/fhir/Patient", json=stored, headers=FHIR_JSON).status_code == 201
    response = client.post("/fhir/Patient/$match", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient()}]})
    assert response.status_code == 200
    families = _scrape(client)
    assert _value(families["fhir_match_duration_seconds"],
                  "fhir_match_duration_seconds_count") == 1
    assert _value(families["fhir_match_candidates_scored"],
                  "fhir_match_candidates_scored_sum") == 3


def test_each_app_counts_alone(client: TestClient) -> None:
    _scrape(client)  # a request is counted once answered: the next scrape shows it
    families = _scrape(client)
    assert _value(families["fhir_http_requests"], "fhir_http_requests_total",
                  route="/metrics") == 1
