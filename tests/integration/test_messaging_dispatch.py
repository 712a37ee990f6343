"""The dispatcher on the embedded default (every channel to the outbox), on SQLite and
PostgreSQL: fan-out into Communications, templates with global, per-recipient and patient
variables, scheduled sends with a controlled clock, opt-out, revocation, request completion,
and the 4xx answers to orders that cannot be sent."""

from __future__ import annotations

from starlette.testclient import TestClient

from fhir_server.messaging.dispatcher import PassReport
from tests.integration.messaging_helpers import (
    FHIR_JSON,
    Clock,
    create_patient,
    delivery_state,
    messages_of,
    post_order,
    request_status,
    run_dispatcher,
    send_order,
    variable,
)


def _template(client: TestClient, name: str, body: str, *, channel: str = "sms",
              subject: str | None = None, variables: list[str] | None = None) -> None:
    payload = {"name": name, "channel": channel, "category": "reminder", "body": body,
               "variables": variables if variables is not None else []}
    if subject is not None:
        payload["subject"] = subject
    response = client.post("/messaging/templates", json=payload)
    assert response.status_code == 201, response.text


def test_literal_sms_fans_out_one_communication_per_recipient(client: TestClient) -> None:
    first = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    second = create_patient(client, given="Alan", family="Turing", phone="+16175550101")
    request_id = post_order(client, send_order([first, second], text="Your results are ready"))

    report = run_dispatcher(client, Clock())

    assert (report.requests, report.queued) == (1, 2)
    messages = messages_of(client, request_id)
    assert sorted(message["subject"]["reference"] for message in messages) == sorted(
        [f"Patient/{first}", f"Patient/{second}"])
    for message in messages:
        assert message["status"] == "completed"
        assert message["payload"] == [{"contentString": "Your results are ready"}]
        assert message["basedOn"] == [{"reference": f"CommunicationRequest/{request_id}"}]
        assert "sent" in message
    assert request_status(client, request_id) == "completed"


def test_template_renders_global_recipient_and_patient_variables(client: TestClient) -> None:
    _template(client, "reminder_sms", "Hi {patient_first_name}, see you {day} at {time}.",
              variables=["patient_first_name", "day", "time"])
    ada = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    alan = create_patient(client, given="Alan", family="Turing", phone="+16175550101")
    order = send_order([ada, {"reference": f"Patient/{alan}",
                              "extension": [variable("time", "11:30")]}],
                       template="reminder_sms", variables={"day": "Monday", "time": "09:00"})
    request_id = post_order(client, order)

    run_dispatcher(client, Clock())

    texts = {message["subject"]["reference"]: message["payload"][0]["contentString"]
             for message in messages_of(client, request_id)}
    assert texts == {f"Patient/{ada}": "Hi Ada, see you Monday at 09:00.",
                     f"Patient/{alan}": "Hi Alan, see you Monday at 11:30."}


def test_email_template_subject_travels_as_topic(client: TestClient) -> None:
    _template(client, "lab_email", "Dear {patient_name}, your {test} results are in.",
              channel="email", subject="Your {test} results", variables=["patient_name", "test"])
    grace = create_patient(client, given="Grace", family="Hopper", email="grace@example.org")
    request_id = post_order(client, send_order([grace], channel="email", template="lab_email",
                                               variables={"test": "blood"}))

    run_dispatcher(client, Clock())

    [message] = messages_of(client, request_id)
    assert message["topic"] == {"text": "Your blood results"}
    assert message["payload"][0]["contentString"] == (
        "Dear Grace Hopper, your blood results are in.")


def test_scheduled_send_waits_for_its_time(client: TestClient) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    clock = Clock()
    request_id = post_order(client, send_order(
        [patient], occurrence=(clock.moment.replace(hour=15)).isoformat()))

    early = run_dispatcher(client, clock)
    assert early.requests == 0
    assert messages_of(client, request_id) == []

    clock.advance(hours=3, seconds=1)
    late = run_dispatcher(client, clock)
    assert (late.requests, late.queued) == (1, 1)
    assert [message["status"] for message in messages_of(client, request_id)] == ["completed"]


def test_a_request_is_fanned_out_once(client: TestClient) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    request_id = post_order(client, send_order([patient]))

    run_dispatcher(client, Clock())
    again = run_dispatcher(client, Clock())

    assert again.requests == 0
    assert len(messages_of(client, request_id)) == 1


def test_draft_and_revoked_requests_send_nothing(client: TestClient) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    draft = post_order(client, send_order([patient], status="draft"))
    revoked = post_order(client, send_order([patient], status="revoked"))

    report = run_dispatcher(client, Clock())

    assert report.requests == 0
    assert messages_of(client, draft) == [] and messages_of(client, revoked) == []


def test_patient_without_address_gets_not_done(client: TestClient) -> None:
    reachable = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    unreachable = create_patient(client, given="Alan", family="Turing")
    request_id = post_order(client, send_order([reachable, unreachable]))

    run_dispatcher(client, Clock())

    by_patient = {message["subject"]["reference"]: message
                  for message in messages_of(client, request_id)}
    assert by_patient[f"Patient/{reachable}"]["status"] == "completed"
    skipped = by_patient[f"Patient/{unreachable}"]
    assert skipped["status"] == "not-done"
    assert skipped["statusReason"]["coding"][0]["code"] == "no-address"
    assert "sent" not in skipped and delivery_state(skipped) == "failed"


def test_contained_recipient_with_a_phone_is_messaged(client: TestClient) -> None:
    order = send_order([{"reference": "#carer"}])
    order["contained"] = [{"resourceType": "RelatedPerson", "id": "carer",
                           "patient": {"reference": "Patient/unknown"},
                           "telecom": [{"system": "phone", "value": "+16175550102"}]}]
    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON, json=order)
    assert response.status_code == 201, response.text

    run_dispatcher(client, Clock())

    [message] = messages_of(client, response.json()["id"])
    assert message["status"] == "completed"
    assert message["recipient"] == [{"reference": "#carer"}]


def test_unknown_template_is_refused(client: TestClient) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON,
                           json=send_order([patient], template="no_such_template"))
    assert response.status_code == 422
    assert "no_such_template" in response.json()["issue"][0]["diagnostics"]


def test_missing_variables_are_named(client: TestClient) -> None:
    _template(client, "needs_day", "See you {day} at {time}", variables=["day", "time"])
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON,
                           json=send_order([patient], template="needs_day",
                                           variables={"day": "Monday"}))
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert "time" in issue["diagnostics"] and "recipient[0]" in issue["diagnostics"]


def test_invalid_phone_for_sms_is_refused(client: TestClient) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="12")
    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON,
                           json=send_order([patient]))
    assert response.status_code == 422
    assert "'12'" in response.json()["issue"][0]["diagnostics"]


def test_invalid_email_for_email_channel_is_refused(client: TestClient) -> None:
    order = send_order([{"reference": "#someone"}], channel="email")
    order["contained"] = [{"resourceType": "RelatedPerson", "id": "someone",
                           "patient": {"reference": "Patient/unknown"},
                           "telecom": [{"system": "email", "value": "not-an-email@"}]}]
    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON, json=order)
    assert response.status_code == 422
    assert "not-an-email@" in response.json()["issue"][0]["diagnostics"]


def test_more_recipients_than_the_limit_is_400_naming_it(client: TestClient) -> None:
    order = send_order([f"p{index}" for index in range(1001)], status="draft")
    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON, json=order)
    assert response.status_code == 400
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert "1001 recipients" in diagnostics and "1000" in diagnostics


def test_unknown_patient_recipient_is_refused(client: TestClient) -> None:
    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON,
                           json=send_order(["does-not-exist"]))
    assert response.status_code == 422
    assert "Patient/does-not-exist" in response.json()["issue"][0]["diagnostics"]


def test_active_request_without_payload_or_template_is_refused(client: TestClient) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON,
                           json=send_order([patient], text=None))
    assert response.status_code == 422
    assert "payload" in response.json()["issue"][0]["diagnostics"]


def test_template_for_another_channel_is_refused(client: TestClient) -> None:
    _template(client, "email_only", "Hello", channel="email", subject="Hi")
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    response = client.post("/fhir/CommunicationRequest", headers=FHIR_JSON,
                           json=send_order([patient], channel="sms", template="email_only"))
    assert response.status_code == 422
    assert "email" in response.json()["issue"][0]["diagnostics"]


def test_stats_count_messages_by_channel_state_and_template(client: TestClient) -> None:
    _template(client, "stats_sms", "Hello {patient_first_name}",
              variables=["patient_first_name"])
    ada = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    alan = create_patient(client, given="Alan", family="Turing", phone="+16175550101")
    post_order(client, send_order([ada, alan], template="stats_sms"))
    run_dispatcher(client, Clock())

    response = client.get("/fhir/Communication/$stats")

    assert response.status_code == 200
    parameters = response.json()["parameter"]
    values = {item["name"]: item.get("valueInteger", item.get("valueDecimal"))
              for item in parameters if "part" not in item}
    assert values["total"] == 2
    templates = [item for item in parameters if item["name"] == "topTemplates"]
    assert templates == [{"name": "topTemplates", "part": [
        {"name": "value", "valueString": "stats_sms"}, {"name": "count", "valueInteger": 2}]}]


def test_stats_reject_a_bad_date(client: TestClient) -> None:
    response = client.get("/fhir/Communication/$stats?start=yesterday")
    assert response.status_code == 400
    assert "start" in response.json()["issue"][0]["diagnostics"]


def test_communications_written_by_the_dispatcher_have_history(client: TestClient) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    request_id = post_order(client, send_order([patient]))
    run_dispatcher(client, Clock())

    [message] = messages_of(client, request_id)
    history = client.get(f"/fhir/Communication/{message['id']}/_history").json()
    statuses = [entry["resource"]["status"] for entry in history["entry"]]
    assert statuses[-1] == "preparation"
    assert statuses[0] == "completed"
    assert "in-progress" in statuses
    assert delivery_state(message) is not None


def test_request_without_channel_or_template_is_a_record_only(client: TestClient) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    order = send_order([patient])
    del order["medium"]
    request_id = post_order(client, order)

    report = run_dispatcher(client, Clock())

    assert report.queued == 0
    assert messages_of(client, request_id) == []
    request = client.get(f"/fhir/CommunicationRequest/{request_id}").json()
    assert (request["status"], request["meta"]["versionId"]) == ("active", "1")


def test_revoking_after_fan_out_cancels_what_is_still_queued(client: TestClient) -> None:
    patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
    request_id = post_order(client, send_order([patient]))
    dispatcher = client.app.state.services.dispatcher  # type: ignore[attr-defined]
    dispatcher.clock = Clock()
    assert client.portal is not None
    client.portal.call(dispatcher.fan_out_due, PassReport())
    request = client.get(f"/fhir/CommunicationRequest/{request_id}").json()
    revoked = client.put(f"/fhir/CommunicationRequest/{request_id}", headers=FHIR_JSON,
                         json={**request, "status": "revoked"})
    assert revoked.status_code == 200, revoked.text

    report = run_dispatcher(client, Clock())

    assert report.states == {}
    [message] = messages_of(client, request_id)
    assert message["status"] == "not-done"
    assert message["statusReason"]["coding"][0]["code"] == "revoked"
    assert delivery_state(message) == "cancelled"
