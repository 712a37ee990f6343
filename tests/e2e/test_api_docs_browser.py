"""The API docs page in a real browser: Swagger UI renders every operation of the OpenAPI
description from the server's own assets, with no console error."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.server_process import running_server

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.e2e
def test_swagger_ui_renders_every_operation(tmp_path: Path,
                                            database_urls: dict[str, str]) -> None:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (.ci/run installs it)")
    with running_server("sqlite", tmp_path / "var", database_urls,
                        {"FHIR_MESSAGING_WORKER": "false"}) as running:
        root = running.base
        described = httpx.get(f"{root}/fhir/openapi.json").json()
        expected = sum(len(methods) for methods in described["paths"].values())
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda message: errors.append(message.text)
                    if message.type == "error" else None)
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{root}/fhir/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            shown = page.locator(".opblock").count()
            browser.close()
    assert shown == expected
    assert errors == []
    assert requested and all(url.startswith(root) for url in requested)
