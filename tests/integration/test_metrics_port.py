"""FHIR_METRICS_PORT: the metrics on a port of their own, and not on the FHIR port."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.settings import Settings
from tests.conftest import empty_tables
from tests.factories import FHIR_JSON, patient


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_metrics_served_on_their_own_port_only(settings: Settings, engine: Engine) -> None:
    empty_tables(engine)
    port = _free_port()
    configured = settings.model_copy(update={"metrics_port": port})
    with TestClient(create_app(configured, migrate=False)) as client:
        assert client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).status_code == 201
        assert client.get("/metrics").status_code == 404
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            body = answer.read().decode()
            assert answer.headers["Content-Type"].startswith("text/plain")
        with pytest.raises(urllib.error.HTTPError) as other:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/fhir/Patient", timeout=10)
        assert other.value.code == 404
    assert 'fhir_http_requests_total{method="POST"' in body
    assert "fhir_db_pool_connections" in body


def test_port_taken_does_not_stop_the_server(settings: Settings, engine: Engine) -> None:
    empty_tables(engine)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        configured = settings.model_copy(update={"metrics_port": port})
        with TestClient(create_app(configured, migrate=False)) as client:
            assert client.get("/fhir/metadata").status_code == 200
