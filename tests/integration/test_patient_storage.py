"""What a Patient write leaves in the PRM tables: SSNs only as ciphertext and keyed hash, phones
in E.164, the PRM summary columns filled, soft deletes, one history row per version; and the
columns own what they map (a row changed by the PRM is what a read shows)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, Table, inspect, select, update
from sqlalchemy.engine import Engine

from fhir_server.app import create_app
from fhir_server.settings import Settings
from storage.tables import patient_identifiers, patient_telecoms, patients, resource_history
from tests.conftest import empty_tables
from tests.factories import FHIR_JSON, patient

PATIENTS = "/fhir/Patient"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
SSN = "123-45-6789"
RACE_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
ETHNICITY_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
CDC_SYSTEM = "urn:oid:2.16.840.1.113883.6.238"


def _ssn_patient(**overrides: Any) -> dict[str, Any]:
    return patient(identifier=[{"system": SSN_SYSTEM, "value": SSN}], **overrides)


def _registered_patient() -> dict[str, Any]:
    """A Patient carrying every element a PRM summary column is derived from."""
    return patient(
        identifier=[{"system": "urn:prm:mrn", "value": "MRN-2024000123"},
                    {"system": SSN_SYSTEM, "value": SSN}],
        extension=[
            {"extension": [
                {"url": "ombCategory",
                 "valueCoding": {"system": CDC_SYSTEM, "code": "2106-3", "display": "White"}},
                {"url": "text", "valueString": "White"}],
             "url": RACE_URL},
            {"extension": [
                {"url": "ombCategory",
                 "valueCoding": {"system": CDC_SYSTEM, "code": "2186-5",
                                 "display": "Not Hispanic or Latino"}},
                {"url": "text", "valueString": "Not Hispanic or Latino"}],
             "url": ETHNICITY_URL},
        ],
        contact=[{
            "relationship": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C"}]}],
            "name": {"family": "Rivera", "given": ["Jorge"]},
            "telecom": [{"system": "phone", "value": "(617) 495-2001"}],
        }],
        communication=[{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}]},
                        "preferred": True}],
    )


def _create(client: TestClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = client.post(PATIENTS, json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _patient_row(engine: Engine, resource_id: str) -> dict[str, Any]:
    with engine.connect() as connection:
        row = connection.execute(
            select(patients).where(patients.c.id == resource_id)).mappings().one()
    return dict(row)


def _set_columns(engine: Engine, resource_id: str, **values: Any) -> None:
    """Change the patient's row directly, as the PRM would."""
    with engine.begin() as connection:
        connection.execute(update(patients).where(patients.c.id == resource_id).values(**values))


def _every_stored_text(engine: Engine) -> list[tuple[str, str, str]]:
    """(table, column, value as text) for every non-null value in every table."""
    found: list[tuple[str, str, str]] = []
    reflected = MetaData()
    with engine.connect() as connection:
        for name in inspect(connection).get_table_names():
            table = Table(name, reflected, autoload_with=connection)
            for row in connection.execute(select(table)).mappings():
                found.extend((name, column, str(value)) for column, value in row.items()
                             if value is not None)
    return found


# ------------------------------------------------------------------------------ SSN


def test_ssn_is_never_stored_in_clear(client: TestClient, engine: Engine) -> None:
    created = _create(client, _ssn_patient())
    _create(client, patient(identifier=[{"system": SSN_SYSTEM, "value": SSN.replace("-", "")}]))
    client.put(f"{PATIENTS}/{created['id']}", json=created | {"gender": "other"},
               headers=FHIR_JSON)
    _create(client, _registered_patient())
    stored = _every_stored_text(engine)
    assert any(table == "resource_history" for table, _, _ in stored)
    leaks = [(table, column) for table, column, value in stored
             if SSN in value or SSN.replace("-", "") in value]
    assert leaks == []


def test_ssn_reads_back_decrypted(client: TestClient) -> None:
    created = _create(client, _ssn_patient())
    read = client.get(f"{PATIENTS}/{created['id']}").json()
    assert {"system": SSN_SYSTEM, "value": SSN} in read["identifier"]


def test_ssn_as_bare_digits_hashes_like_dashed_form(client: TestClient, engine: Engine) -> None:
    dashed = _create(client, _ssn_patient())
    bare = _create(client, patient(identifier=[{"system": SSN_SYSTEM,
                                                "value": SSN.replace("-", "")}]))
    assert _patient_row(engine, bare["id"])["ssn_hash"] == (
        _patient_row(engine, dashed["id"])["ssn_hash"])


def test_same_ssn_gives_same_hash(client: TestClient, engine: Engine) -> None:
    first = _create(client, _ssn_patient())
    second = _create(client, _ssn_patient(gender="male"))
    first_row, second_row = _patient_row(engine, first["id"]), _patient_row(engine, second["id"])
    assert first_row["ssn_hash"] is not None
    assert first_row["ssn_hash"] == second_row["ssn_hash"]
    assert first_row["ssn_ciphertext"] != second_row["ssn_ciphertext"]


def test_ssn_identifier_row_holds_hash_and_ciphertext_only(
    client: TestClient, engine: Engine
) -> None:
    created = _create(client, _ssn_patient())
    with engine.connect() as connection:
        row = connection.execute(select(patient_identifiers).where(
            patient_identifiers.c.patient_id == created["id"],
            patient_identifiers.c.system == SSN_SYSTEM)).mappings().one()
    assert row["value"] is None
    assert row["value_ciphertext"]
    assert row["value_hash"] == _patient_row(engine, created["id"])["ssn_hash"]


def test_conditional_create_finds_patient_by_ssn(client: TestClient) -> None:
    created = _create(client, _ssn_patient())
    response = client.post(PATIENTS, json=_ssn_patient(),
                           headers=FHIR_JSON | {"If-None-Exist": f"identifier={SSN_SYSTEM}|{SSN}"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == created["id"]
    assert client.get(f"{PATIENTS}/_history").json()["total"] == 1


def test_conditional_create_with_other_ssn_creates(client: TestClient) -> None:
    _create(client, _ssn_patient())
    condition = {"If-None-Exist": f"identifier={SSN_SYSTEM}|987-65-4321"}
    response = client.post(PATIENTS, json=_ssn_patient(), headers=FHIR_JSON | condition)
    assert response.status_code == 201, response.text


# ---------------------------------------------------------------------------- phones


def test_primary_phone_column_holds_e164(client: TestClient, engine: Engine) -> None:
    created = _create(client, patient())
    assert _patient_row(engine, created["id"])["primary_phone"] == "+16174952000"


def test_telecom_row_holds_value_as_sent_and_e164(client: TestClient, engine: Engine) -> None:
    created = _create(client, patient())
    with engine.connect() as connection:
        row = connection.execute(select(patient_telecoms).where(
            patient_telecoms.c.patient_id == created["id"],
            patient_telecoms.c.system == "phone")).mappings().one()
    assert row["value"] == "(617) 495-2000"
    assert row["value_e164"] == "+16174952000"


def test_phone_reads_back_as_sent(client: TestClient) -> None:
    created = _create(client, patient())
    read = client.get(f"{PATIENTS}/{created['id']}").json()
    assert read["telecom"][0] == {"system": "phone", "value": "(617) 495-2000", "use": "mobile"}


def test_unparseable_phone_leaves_e164_empty(client: TestClient, engine: Engine) -> None:
    created = _create(client, patient(telecom=[{"system": "phone", "value": "(03) 5555 6473"}]))
    row = _patient_row(engine, created["id"])
    assert row["primary_phone"] is None


# ------------------------------------------------------------------------ PRM columns


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("mrn", "MRN-2024000123"),
        ("legal_name", "Ana Lucia Rivera"),
        ("family_name", "Rivera"),
        ("given_name", "Ana Lucia"),
        ("birth_date", date(1984, 3, 9)),
        ("birth_date_precision", "day"),
        ("gender", "female"),
        ("email", "ana.rivera@example.org"),
        ("address_line", "12 Elm St"),
        ("address_city", "Boston"),
        ("address_state", "MA"),
        ("address_postal_code", "02115"),
        ("race_code", "2106-3"),
        ("race_display", "White"),
        ("ethnicity_code", "2186-5"),
        ("preferred_language", "es"),
        ("emergency_contact_name", "Jorge Rivera"),
        ("emergency_contact_relationship", "C"),
        ("emergency_contact_phone", "+16174952001"),
        ("status", "active"),
    ],
)
def test_prm_column_is_filled(
    client: TestClient, engine: Engine, column: str, expected: Any
) -> None:
    created = _create(client, _registered_patient())
    assert _patient_row(engine, created["id"])[column] == expected


def test_generated_mrn_is_stored_in_mrn_column(client: TestClient, engine: Engine) -> None:
    created = _create(client, patient())
    mrn = next(i["value"] for i in created["identifier"] if i["system"] == "urn:prm:mrn")
    assert _patient_row(engine, created["id"])["mrn"] == mrn


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"active": True}, "active"),
        ({"active": False}, "inactive"),
        ({"deceasedBoolean": True}, "deceased"),
        ({"active": False, "deceasedDateTime": "2020-01-02T03:04:05Z"}, "deceased"),
    ],
    ids=["active", "inactive", "deceased-boolean", "deceased-datetime"],
)
def test_status_column_follows_active_and_deceased(
    client: TestClient, engine: Engine, overrides: dict, status: str
) -> None:
    created = _create(client, patient(**overrides))
    assert _patient_row(engine, created["id"])["status"] == status


def test_partial_birth_date_keeps_its_precision(client: TestClient, engine: Engine) -> None:
    created = _create(client, patient(birthDate="1984-03"))
    row = _patient_row(engine, created["id"])
    assert (row["birth_date"], row["birth_date_precision"]) == (date(1984, 3, 1), "month")
    assert client.get(f"{PATIENTS}/{created['id']}").json()["birthDate"] == "1984-03"


# ------------------------------------------------------------------- versions, deletes


def test_delete_sets_deleted_at(client: TestClient, engine: Engine) -> None:
    created = _create(client, patient())
    assert _patient_row(engine, created["id"])["deleted_at"] is None
    client.delete(f"{PATIENTS}/{created['id']}")
    row = _patient_row(engine, created["id"])
    assert row["deleted_at"] is not None
    assert row["version_id"] == 2


def test_version_id_column_counts_writes(client: TestClient, engine: Engine) -> None:
    created = _create(client, patient())
    client.put(f"{PATIENTS}/{created['id']}", json=created | {"gender": "other"},
               headers=FHIR_JSON)
    client.put(f"{PATIENTS}/{created['id']}", json=created | {"gender": "male"},
               headers=FHIR_JSON)
    assert _patient_row(engine, created["id"])["version_id"] == 3


def test_one_history_row_per_version(client: TestClient, engine: Engine) -> None:
    created = _create(client, patient())
    client.put(f"{PATIENTS}/{created['id']}", json=created | {"gender": "other"},
               headers=FHIR_JSON)
    client.delete(f"{PATIENTS}/{created['id']}")
    with engine.connect() as connection:
        rows = connection.execute(
            select(resource_history.c.resource_type, resource_history.c.version_id,
                   resource_history.c.method, resource_history.c.snapshot)
            .where(resource_history.c.resource_id == created["id"])
            .order_by(resource_history.c.version_id)).all()
    assert [(r.resource_type, r.version_id, r.method) for r in rows] == [
        ("Patient", 1, "POST"), ("Patient", 2, "PUT"), ("Patient", 3, "DELETE")]
    assert [r.snapshot is None for r in rows] == [False, False, True]


def test_refused_update_leaves_row_and_history_unchanged(
    client: TestClient, engine: Engine
) -> None:
    created = _create(client, patient())
    before = _patient_row(engine, created["id"])
    response = client.put(f"{PATIENTS}/{created['id']}",
                          json=created | {"birthDate": "2999-01-01"}, headers=FHIR_JSON)
    assert response.status_code == 400
    assert _patient_row(engine, created["id"]) == before
    with engine.connect() as connection:
        versions = connection.execute(select(resource_history.c.version_id).where(
            resource_history.c.resource_id == created["id"])).scalars().all()
    assert versions == [1]


# ------------------------------------------------------------------- columns own on read


def test_race_code_changed_by_prm_rebuilds_extension(client: TestClient, engine: Engine) -> None:
    created = _create(client, _registered_patient())
    _set_columns(engine, created["id"], race_code="2054-5",
                 race_display="Black or African American")
    read = client.get(f"{PATIENTS}/{created['id']}").json()
    race = next(ext for ext in read["extension"] if ext["url"] == RACE_URL)
    assert race["extension"] == [
        {"url": "ombCategory", "valueCoding": {"system": CDC_SYSTEM, "code": "2054-5"}},
        {"url": "text", "valueString": "Black or African American"},
    ]


def test_race_change_keeps_other_extensions(client: TestClient, engine: Engine) -> None:
    created = _create(client, _registered_patient())
    _set_columns(engine, created["id"], race_code="2054-5")
    read = client.get(f"{PATIENTS}/{created['id']}").json()
    ethnicity = [ext for ext in read["extension"] if ext["url"] == ETHNICITY_URL]
    assert ethnicity == [_registered_patient()["extension"][1]]


def test_preferred_language_changed_by_prm_rebuilds_communication(
    client: TestClient, engine: Engine
) -> None:
    created = _create(client, _registered_patient())
    _set_columns(engine, created["id"], preferred_language="pt-BR")
    read = client.get(f"{PATIENTS}/{created['id']}").json()
    assert read["communication"][0] == {
        "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "pt-BR"}]},
        "preferred": True,
    }


def test_emergency_contact_name_changed_by_prm_rebuilds_contact(
    client: TestClient, engine: Engine
) -> None:
    created = _create(client, _registered_patient())
    _set_columns(engine, created["id"], emergency_contact_name="Marta Rivera")
    read = client.get(f"{PATIENTS}/{created['id']}").json()
    assert read["contact"][0]["name"] == {"text": "Marta Rivera"}
    assert read["contact"][0]["telecom"] == [{"system": "phone", "value": "+16174952001"}]


def test_unchanged_columns_keep_elements_as_written(client: TestClient) -> None:
    sent = _registered_patient()
    created = _create(client, sent)
    read = client.get(f"{PATIENTS}/{created['id']}").json()
    assert (read["extension"], read["communication"], read["contact"]) == (
        sent["extension"], sent["communication"], sent["contact"])


# ---------------------------------------------------------------------- key rotation


def _app_with_keys(settings: Settings, keys: str) -> TestClient:
    return TestClient(create_app(settings.model_copy(update={"encryption_keys": keys}),
                                 migrate=False))


def test_ssn_written_with_old_key_reads_after_rotation(
    settings: Settings, engine: Engine
) -> None:
    empty_tables(engine)
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with _app_with_keys(settings, old_key) as before_rotation:
        created = _create(before_rotation, _ssn_patient())
    with _app_with_keys(settings, f"{new_key},{old_key}") as after_rotation:
        read = after_rotation.get(f"{PATIENTS}/{created['id']}")
    assert read.status_code == 200, read.text
    assert {"system": SSN_SYSTEM, "value": SSN} in read.json()["identifier"]


def test_write_after_rotation_encrypts_with_new_key(settings: Settings, engine: Engine) -> None:
    empty_tables(engine)
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with _app_with_keys(settings, old_key) as before_rotation:
        created = _create(before_rotation, _ssn_patient())
    with _app_with_keys(settings, f"{new_key},{old_key}") as after_rotation:
        after_rotation.put(f"{PATIENTS}/{created['id']}", json=created, headers=FHIR_JSON)
    ciphertext = _patient_row(engine, created["id"])["ssn_ciphertext"]
    assert Fernet(new_key.encode()).decrypt(ciphertext.encode()).decode() == SSN


def test_search_hash_survives_key_rotation(settings: Settings, engine: Engine) -> None:
    empty_tables(engine)
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with _app_with_keys(settings, old_key) as before_rotation:
        created = _create(before_rotation, _ssn_patient())
    with _app_with_keys(settings, f"{new_key},{old_key}") as after_rotation:
        response = after_rotation.post(
            PATIENTS, json=_ssn_patient(),
            headers=FHIR_JSON | {"If-None-Exist": f"identifier={SSN_SYSTEM}|{SSN}"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == created["id"]
