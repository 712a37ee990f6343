"""GET /fhir/docs: Swagger UI over /fhir/openapi.json, every asset served by the server itself
(no CDN), public like the CapabilityStatement."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_page_loads_its_assets_from_this_server(client: TestClient) -> None:
    page = client.get("/fhir/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/fhir/openapi.json" in page.text
    assets = re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", page.text)
    assert assets and all(asset.startswith("/fhir/docs/static/") for asset in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_docs_and_description_need_no_token(secured_client: TestClient) -> None:
    assert secured_client.get("/fhir/docs").status_code == 200
    assert secured_client.get("/fhir/docs/static/swagger-ui-bundle.js").status_code == 200
    description = secured_client.get("/fhir/openapi.json")
    assert description.status_code == 200
    assert description.json()["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "/fhir/docs" not in description.json()["paths"]
    assert secured_client.get("/fhir/Patient").status_code == 401
