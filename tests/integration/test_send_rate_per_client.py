"""With authentication on, the bulk-send rate limit counts per token client, not per address:
two apps behind one address each get their own budget."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.settings import Settings
from tests.conftest import empty_tables
from tests.factories import FHIR_JSON, communication_request, patient
from tests.tokens import TokenIssuer, secured


def test_each_token_client_has_its_own_send_budget(settings: Settings, engine: Engine,
                                                   token_issuer: TokenIssuer) -> None:
    empty_tables(engine)
    configured = secured(settings, token_issuer).model_copy(update={"send_rate_limit": 2})
    scopes = "user/Patient.cu user/CommunicationRequest.c"
    with TestClient(create_app(configured, migrate=False)) as client:
        admin = FHIR_JSON | token_issuer.headers(scopes, client_id="admin")
        assert client.put("/fhir/Patient/p-1", json=patient(id="p-1", telecom=[
            {"system": "phone", "value": "+16174952001", "use": "mobile"}]),
            headers=admin).status_code == 201
        order = communication_request(identifier=None, recipient=[{"reference": "Patient/p-1"}])
        statuses = {}
        for app_name in ("reminders", "billing"):
            headers = FHIR_JSON | token_issuer.headers(scopes, client_id=app_name)
            statuses[app_name] = [
                client.post("/fhir/CommunicationRequest", json=order, headers=headers).status_code
                for _ in range(3)]
    assert statuses == {"reminders": [201, 201, 429], "billing": [201, 201, 429]}
