"""The OpenAPI description of the FHIR endpoints (``GET /fhir/openapi.json``): generated from
the route table and the CapabilityStatement, and held to by schemathesis on SQLite and
PostgreSQL: generated requests to every operation never get a 5xx, and every answer has a
documented status, content type and body shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.settings import Settings
from tests.conftest import empty_tables
from tests.factories import FHIR_JSON, patient

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = 8
"""Generated requests per operation: 69 operations, a few seconds per backend."""


@pytest.fixture
def api_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A running app with one patient, answering 500s instead of raising them."""
    empty_tables(engine)
    app = create_app(settings, migrate=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.put("/fhir/Patient/p-1", json=patient(id="p-1"),
                          headers=FHIR_JSON).status_code == 201
        yield client


@pytest.fixture
def fhir_openapi(api_client: TestClient) -> Any:
    return schemathesis.openapi.from_dict(api_client.get("/fhir/openapi.json").json())


def test_document_describes_every_declared_interaction(api_client: TestClient) -> None:
    document = api_client.get("/fhir/openapi.json").json()
    statement = api_client.get("/fhir/metadata").json()
    paths = document["paths"]
    assert document["openapi"].startswith("3.")
    for resource in statement["rest"][0]["resource"]:
        name, codes = resource["type"], {item["code"] for item in resource["interaction"]}
        assert ("get" in paths.get(f"/fhir/{name}/{{resource_id}}", {})) == ("read" in codes)
        assert ("post" in paths.get(f"/fhir/{name}", {})) == ("create" in codes)
        assert ("patch" in paths.get(f"/fhir/{name}/{{resource_id}}", {})) == (
            "patch" in codes)
        search = paths.get(f"/fhir/{name}", {}).get("get", {})
        documented = {parameter["name"] for parameter in search.get("parameters", [])}
        assert {parameter["name"] for parameter in resource.get("searchParam", [])} <= documented
    for operation in ("/fhir/Patient/$match", "/fhir/Patient/$merge", "/fhir"):
        assert "post" in paths[operation]


def test_reads_document_conditional_read_parts_and_byte_ranges(api_client: TestClient) -> None:
    paths = api_client.get("/fhir/openapi.json").json()["paths"]
    patient = paths["/fhir/Patient/{resource_id}"]["get"]
    names = {parameter["name"] for parameter in patient["parameters"]}
    assert {"If-None-Match", "If-Modified-Since", "_summary", "_elements"} <= names
    assert "304" in patient["responses"]
    binary = paths["/fhir/Binary/{resource_id}"]["get"]
    assert {"Range", "If-Range"} <= {parameter["name"] for parameter in binary["parameters"]}
    assert {"200", "206", "304", "416"} <= set(binary["responses"])


def _transport(kwargs: dict[str, Any]) -> dict[str, Any]:
    """schemathesis' requests-style arguments for the httpx-based TestClient."""
    kwargs = dict(kwargs)
    kwargs.pop("cookies", None)
    data = kwargs.get("data")
    if isinstance(data, (bytes, str)):
        kwargs["content"] = kwargs.pop("data")
    return kwargs


def test_generated_requests_get_documented_answers(api_client: TestClient) -> None:
    """Each operation gets EXAMPLES generated requests (derandomized: the same each run);
    failures are collected over all operations, then reported together."""
    schema = schemathesis.openapi.from_dict(api_client.get("/fhir/openapi.json").json())
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        def run(case: Any) -> None:
            response = api_client.request(**_transport(
                case.as_transport_kwargs(base_url="http://testserver")))
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Exception as failure:  # noqa: BLE001 - every operation's failure is reported
            failures.append(f"{operation.method.upper()} {operation.path}: "
                            f"{str(failure)[:1500]}")
    assert operations > 60
    assert failures == [], "\n\n".join(failures)
