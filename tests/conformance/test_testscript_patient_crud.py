"""The project TestScript conformance/testscripts-r4/project-json/patient-crud-search.json run
as HTTP steps against the app (https://hl7.org/fhir/R4/testscript.html): each operation becomes
a request, each assert a check. One test per operation: the operations before it run first (they
set up its state), then its own asserts must hold. The search step is skipped only while the
CapabilityStatement declares no Patient search."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import SHARED_DATA
from tests.factories import FHIR_JSON

SCRIPT_PATH = "conformance/testscripts-r4/project-json/patient-crud-search.json"
# TestScript assert.response codes (http://hl7.org/fhir/assert-response-code-types).
RESPONSE_CODES = {
    "okay": 200, "created": 201, "noContent": 204, "notModified": 304, "bad": 400,
    "forbidden": 403, "notFound": 404, "methodNotAllowed": 405, "conflict": 409, "gone": 410,
    "preconditionFailed": 412, "unprocessable": 422,
}
Step = tuple[dict[str, Any], list[dict[str, Any]]]


def _load_script(data_dir: Path) -> dict[str, Any]:
    script: dict[str, Any] = json.loads((data_dir / SCRIPT_PATH).read_text(encoding="utf-8"))
    return script


def _steps(script: dict[str, Any]) -> list[Step]:
    """Each operation of the script's tests with the asserts that follow it."""
    steps: list[Step] = []
    for test in script["test"]:
        for action in test["action"]:
            if "operation" in action:
                steps.append((action["operation"], []))
            elif "assert" in action:
                steps[-1][1].append(action["assert"])
    return steps


def _step_ids() -> list[str]:
    path = SHARED_DATA / SCRIPT_PATH
    if not path.exists():
        return []
    return [operation["description"] for operation, _ in _steps(_load_script(SHARED_DATA))]


class ScriptRun:
    """The script's fixtures and variables, and the requests its operations make."""

    def __init__(self, script: dict[str, Any], client: TestClient) -> None:
        self.client = client
        contained = {f"#{r['resourceType']}/{r['id']}": r for r in script.get("contained", [])}
        contained |= {f"#{r['id']}": r for r in script.get("contained", [])}
        self.fixtures = {f["id"]: contained[f["resource"]["reference"]]
                         for f in script.get("fixture", [])}
        self.variables = {v["name"]: v["defaultValue"] for v in script.get("variable", [])}

    def substitute(self, text: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda match: self.variables[match.group(1)], text)

    def perform(self, operation: dict[str, Any]) -> Response:
        code = operation["type"]["code"]
        base = f"/fhir/{operation['resource']}"
        target = self.fixtures[operation["targetId"]] if "targetId" in operation else None
        if code == "update":
            assert target is not None
            body = self.fixtures[operation["sourceId"]]
            return self.client.put(f"{base}/{target['id']}", json=body, headers=FHIR_JSON)
        if code == "create":
            body = self.fixtures[operation["sourceId"]]
            return self.client.post(base, json=body, headers=FHIR_JSON)
        if code == "read":
            assert target is not None
            return self.client.get(f"{base}/{target['id']}", headers=FHIR_JSON)
        if code == "search":
            return self.client.get(base + self.substitute(operation.get("params", "")),
                                   headers=FHIR_JSON)
        if code == "delete":
            assert target is not None
            return self.client.delete(f"{base}/{target['id']}")
        raise AssertionError(f"TestScript operation '{code}' is not implemented by this test")

    def check(self, check: dict[str, Any], response: Response) -> None:
        """One TestScript assert on the response; AssertionError naming it when it fails."""
        label = check.get("description", "")
        operator = check.get("operator", "equals")
        if "responseCode" in check:
            allowed = {int(code) for code in check["responseCode"].split(",")}
            if operator == "in":
                assert response.status_code in allowed, (label, response.status_code,
                                                          response.text)
            else:
                assert {response.status_code} == allowed, (label, response.status_code,
                                                           response.text)
        elif "response" in check:
            assert response.status_code == RESPONSE_CODES[check["response"]], (
                label, response.status_code, response.text)
        elif "headerField" in check:
            value = response.headers.get(check["headerField"])
            assert operator in ("notEmpty", "exists"), f"operator {operator} not implemented"
            assert value, (label, dict(response.headers))
        elif "resource" in check:
            assert response.json().get("resourceType") == check["resource"], (
                label, response.text)
        elif "expression" in check:
            assert operator == "equals", f"operator {operator} not implemented"
            result = _evaluate(check["expression"], response.json())
            expected = self.substitute(str(check["value"]))
            assert [str(item) for item in result] == [expected], (label, result, expected)
        else:
            raise AssertionError(f"TestScript assert not implemented by this test: {check}")


def _evaluate(expression: str, resource: dict[str, Any]) -> list[Any]:
    """The FHIRPath subset the script uses: ``Type.element.element`` and a final ``count()``."""
    type_name, *parts = expression.split(".")
    collection: list[Any] = [resource] if resource.get("resourceType") == type_name else []
    for part in parts:
        if part == "count()":
            collection = [len(collection)]
            continue
        assert re.fullmatch(r"[A-Za-z]\w*", part), f"FHIRPath '{expression}' not implemented"
        step: list[Any] = []
        for item in collection:
            value = item.get(part) if isinstance(item, dict) else None
            step.extend(value if isinstance(value, list) else [] if value is None else [value])
        collection = step
    return collection


def _patient_search_declared(client: TestClient) -> bool:
    statement = client.get("/fhir/metadata").json()
    resources = statement["rest"][0].get("resource", [])
    patient = next((r for r in resources if r["type"] == "Patient"), {})
    return "search-type" in {i["code"] for i in patient.get("interaction", [])}


@pytest.mark.parametrize("step_name", _step_ids())
def test_testscript_step_meets_its_asserts(
    client: TestClient, shared_data: Path, step_name: str
) -> None:
    script = _load_script(shared_data)
    run = ScriptRun(script, client)
    has_search = _patient_search_declared(client)
    for operation, asserts in _steps(script):
        is_search = operation["type"]["code"] == "search"
        if operation["description"] == step_name:
            if is_search and not has_search:
                pytest.skip("the server has no search yet (CapabilityStatement declares no "
                            "Patient search-type); TestScript step "
                            f"'{step_name}' ({operation.get('params')}) not run")
            response = run.perform(operation)
            for check in asserts:
                run.check(check, response)
            return
        if is_search and not has_search:
            continue  # a search changes nothing: the later steps do not need it
        previous = run.perform(operation)
        assert previous.status_code < 400, (operation["description"], previous.text)
    raise AssertionError(f"step {step_name} not found")


def test_testscript_has_the_expected_steps(shared_data: Path) -> None:
    codes = [operation["type"]["code"] for operation, _ in _steps(_load_script(shared_data))]
    assert codes == ["update", "read", "search", "delete", "read"]
