"""Shared steps of the messaging tests: patients with phones and emails, send orders as
CommunicationRequests, running the dispatcher inside the app's event loop with a clock the test
controls, and reading back the Communications of a request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.testclient import TestClient

from terminology.messaging import (
    MESSAGE_CHANNEL,
    MESSAGE_TEMPLATE_EXTENSION,
    MESSAGE_VARIABLE_EXTENSION,
)

FHIR_JSON = {"Content-Type": "application/fhir+json"}
START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = START) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


def create_patient(client: TestClient, *, given: str, family: str, phone: str | None = None,
                   email: str | None = None) -> str:
    telecom = []
    if phone:
        telecom.append({"system": "phone", "value": phone, "use": "mobile"})
    if email:
        telecom.append({"system": "email", "value": email})
    patient = {"resourceType": "Patient", "name": [{"family": family, "given": [given]}]}
    if telecom:
        patient["telecom"] = telecom
    response = client.post("/fhir/Patient", headers=FHIR_JSON, json=patient)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def variable(name: str, value: str) -> dict[str, Any]:
    return {"url": MESSAGE_VARIABLE_EXTENSION, "extension": [
        {"url": "name", "valueString": name}, {"url": "value", "valueString": value}]}


def send_order(recipients: list[str | dict[str, Any]], *, channel: str = "sms",
               text: str | None = "Your results are ready", template: str | None = None,
               variables: dict[str, str] | None = None, status: str = "active",
               occurrence: str | None = None) -> dict[str, Any]:
    order: dict[str, Any] = {
        "resourceType": "CommunicationRequest", "status": status,
        "medium": [{"coding": [{"system": MESSAGE_CHANNEL, "code": channel}]}],
        "recipient": [{"reference": f"Patient/{item}"} if isinstance(item, str) else item
                      for item in recipients],
    }
    extensions = [variable(name, value) for name, value in (variables or {}).items()]
    if template is not None:
        extensions.insert(0, {"url": MESSAGE_TEMPLATE_EXTENSION, "valueString": template})
    elif text is not None:
        order["payload"] = [{"contentString": text}]
    if extensions:
        order["extension"] = extensions
    if occurrence is not None:
        order["occurrenceDateTime"] = occurrence
    return order


def post_order(client: TestClient, order: dict[str, Any]) -> str:
    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON, json=order)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def run_dispatcher(client: TestClient, clock: Clock | None = None) -> Any:
    """One ``run_once`` of the app's dispatcher, in the app's event loop."""
    dispatcher = client.app.state.services.dispatcher  # type: ignore[attr-defined]
    if clock is not None:
        dispatcher.clock = clock
    assert client.portal is not None
    return client.portal.call(dispatcher.run_once)


def messages_of(client: TestClient, request_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/fhir/Communication?based-on=CommunicationRequest/{request_id}"
                          "&_count=1000")
    assert response.status_code == 200, response.text
    return [entry["resource"] for entry in response.json().get("entry", [])]


def request_status(client: TestClient, request_id: str) -> str:
    return str(client.get(f"/fhir/CommunicationRequest/{request_id}").json()["status"])


def delivery_state(resource: dict[str, Any]) -> str | None:
    return next((extension["valueCode"] for extension in resource.get("extension", [])
                 if extension["url"].endswith("delivery-status")), None)
