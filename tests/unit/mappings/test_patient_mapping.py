"""mappings.patient: Patient -> PRM rows -> Patient, with no database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.fernet import Fernet, MultiFernet

from mappings.patient import (
    MappingContext,
    PatientRuleError,
    format_instant,
    resource_to_rows,
    rows_to_resource,
)
from storage.crypto import FieldCipher
from storage.row_set import RowSet
from tests.factories import patient, without_server_elements

MRN_SYSTEM = "urn:prm:mrn"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
RACE_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
ETHNICITY_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
CDC_SYSTEM = "urn:oid:2.16.840.1.113883.6.238"
MARITAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
LAST_UPDATED = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
CONTEXT = MappingContext(
    cipher=FieldCipher(fernet=MultiFernet([Fernet(Fernet.generate_key())]),
                       hash_key=b"unit-test-hash-key"),
    phone_region="US",
    mrn_system=MRN_SYSTEM,
)


def _rows(resource: dict[str, Any], *, mrn: str = "MRN-2024000001",
          context: MappingContext = CONTEXT) -> RowSet:
    return resource_to_rows(resource, resource_id="p1", version_id=1,
                            last_updated=LAST_UPDATED, mrn=mrn, context=context)


def _round_trip(resource: dict[str, Any]) -> dict[str, Any]:
    return rows_to_resource(_rows(resource), CONTEXT)


def _race(code: str, text: str) -> dict[str, Any]:
    return {"extension": [{"url": "ombCategory",
                           "valueCoding": {"system": CDC_SYSTEM, "code": code}},
                          {"url": "text", "valueString": text}],
            "url": RACE_URL}


def _issue_paths(error: pytest.ExceptionInfo[PatientRuleError]) -> list[str]:
    return [expr for issue in error.value.issues for expr in issue.expression]


# --------------------------------------------------------------------------- round trip


def test_round_trip_returns_the_patient() -> None:
    assert without_server_elements(_round_trip(patient())) == patient()


def test_round_trip_through_snapshot_returns_the_patient() -> None:
    rows = RowSet.from_snapshot(_rows(patient()).to_snapshot())
    assert without_server_elements(rows_to_resource(rows, CONTEXT)) == patient()


def test_elements_without_columns_are_kept() -> None:
    sent = patient(
        maritalStatus={"coding": [{"system": MARITAL_SYSTEM, "code": "M"}]},
        multipleBirthInteger=2,
        generalPractitioner=[{"reference": "Practitioner/ehr-7"}],
        _gender={"extension": [{"url": "http://example.org/x", "valueString": "as stated"}]},
        name=[{"use": "official", "family": "Rivera", "given": ["Ana", "Lucia"],
               "period": {"start": "2001-01-01"},
               "_given": [None, {"extension": [{"url": "http://example.org/y",
                                                "valueBoolean": True}]}]}],
    )
    assert without_server_elements(_round_trip(sent)) == sent


def test_read_sets_id_and_server_meta() -> None:
    read = _round_trip(patient())
    assert read["id"] == "p1"
    assert read["meta"] == {"versionId": "1", "lastUpdated": "2024-01-02T03:04:05.678Z"}


def test_client_meta_is_kept_and_server_meta_replaced() -> None:
    sent = patient(meta={"versionId": "99", "lastUpdated": "2000-01-01T00:00:00Z",
                         "tag": [{"system": "http://example.org/tags", "code": "vip"}]})
    assert _round_trip(sent)["meta"] == {
        "versionId": "1", "lastUpdated": "2024-01-02T03:04:05.678Z",
        "tag": [{"system": "http://example.org/tags", "code": "vip"}]}


def test_read_puts_elements_in_fhir_order() -> None:
    narrative = {"status": "generated",
                 "div": '<div xmlns="http://www.w3.org/1999/xhtml">Ana</div>'}
    keys = list(_round_trip(patient(text=narrative)))
    assert keys[:5] == ["resourceType", "id", "meta", "text", "identifier"]
    assert keys.index("gender") < keys.index("birthDate") < keys.index("address")


def test_body_id_is_not_stored() -> None:
    assert _round_trip(patient(id="client-chosen"))["id"] == "p1"


def test_remainder_holds_only_elements_without_columns() -> None:
    rows = _rows(patient(maritalStatus={"text": "married"}))
    assert json.loads(rows.main["remainder"]) == {"maritalStatus": {"text": "married"}}


# -------------------------------------------------------------------------------- MRN


def test_generated_mrn_is_added_as_mr_identifier() -> None:
    read = _round_trip(patient())
    assert read["identifier"][-1] == {
        "use": "usual",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                             "code": "MR"}]},
        "system": MRN_SYSTEM,
        "value": "MRN-2024000001",
    }


def test_client_mrn_is_kept_without_a_generated_one() -> None:
    sent = patient(identifier=[{"system": MRN_SYSTEM, "value": "MRN-2020123456"}])
    assert _round_trip(sent)["identifier"] == sent["identifier"]


def test_mrn_column_holds_the_given_mrn() -> None:
    assert _rows(patient(), mrn="MRN-2024999999").main["mrn"] == "MRN-2024999999"


# -------------------------------------------------------------------------------- SSN


def test_ssn_row_holds_ciphertext_and_hash_not_value() -> None:
    rows = _rows(patient(identifier=[{"system": SSN_SYSTEM, "value": "123-45-6789"}]))
    row = rows.children["identifiers"][0]
    assert row["value"] is None
    assert CONTEXT.cipher.decrypt(row["value_ciphertext"]) == "123-45-6789"
    assert row["value_hash"] == CONTEXT.cipher.search_hash("123-45-6789")
    assert (rows.main["ssn_ciphertext"], rows.main["ssn_hash"]) == (
        row["value_ciphertext"], row["value_hash"])


def test_ssn_is_absent_from_snapshot() -> None:
    snapshot = _rows(patient(identifier=[{"system": SSN_SYSTEM, "value": "123-45-6789"}])
                     ).to_snapshot()
    assert "123-45-6789" not in snapshot
    assert "123456789" not in snapshot


def test_ssn_reads_back_decrypted() -> None:
    sent = patient(identifier=[{"use": "official", "system": SSN_SYSTEM, "value": "123-45-6789"}])
    assert _round_trip(sent)["identifier"][0] == sent["identifier"][0]


def test_ssn_hash_does_not_depend_on_encryption_key() -> None:
    other = MappingContext(
        cipher=FieldCipher(fernet=MultiFernet([Fernet(Fernet.generate_key())]),
                           hash_key=b"unit-test-hash-key"),
        phone_region="US", mrn_system=MRN_SYSTEM)
    sent = patient(identifier=[{"system": SSN_SYSTEM, "value": "123-45-6789"}])
    assert _rows(sent).main["ssn_hash"] == _rows(sent, context=other).main["ssn_hash"]


def test_ssn_written_with_old_key_reads_with_rotated_keys() -> None:
    old, new = Fernet(Fernet.generate_key()), Fernet(Fernet.generate_key())
    before = MappingContext(cipher=FieldCipher(MultiFernet([old]), b"h"), phone_region="US",
                            mrn_system=MRN_SYSTEM)
    after = MappingContext(cipher=FieldCipher(MultiFernet([new, old]), b"h"),
                           phone_region="US", mrn_system=MRN_SYSTEM)
    sent = patient(identifier=[{"system": SSN_SYSTEM, "value": "123-45-6789"}])
    read = rows_to_resource(_rows(sent, context=before), after)
    assert read["identifier"][0]["value"] == "123-45-6789"


@pytest.mark.parametrize(
    "value",
    ["1234-56-789", "123-456-789", "12-345-6789", "abc-de-fghi", "12345678", "123 45 6789"],
)
def test_malformed_ssn_is_refused_naming_identifier_value(value: str) -> None:
    sent = patient(identifier=[{"system": "http://x", "value": "1"},
                               {"system": SSN_SYSTEM, "value": value}])
    with pytest.raises(PatientRuleError) as error:
        _rows(sent)
    assert _issue_paths(error) == ["Patient.identifier[1].value"]


def test_malformed_ssn_is_masked_in_diagnostics() -> None:
    with pytest.raises(PatientRuleError) as error:
        _rows(patient(identifier=[{"system": SSN_SYSTEM, "value": "1234-56-789"}]))
    assert "1234-56-789" not in str(error.value)
    assert "123456789" not in str(error.value)


def test_ssn_as_bare_digits_is_stored_and_read_dashed() -> None:
    rows = _rows(patient(identifier=[{"system": SSN_SYSTEM, "value": "123456789"}]))
    assert CONTEXT.cipher.decrypt(rows.main["ssn_ciphertext"]) == "123-45-6789"
    assert rows.main["ssn_hash"] == CONTEXT.cipher.search_hash("123-45-6789")
    assert rows_to_resource(rows, CONTEXT)["identifier"][0]["value"] == "123-45-6789"


# ----------------------------------------------------------------------------- telecom


def test_phone_gets_e164_in_row_and_primary_phone() -> None:
    rows = _rows(patient())
    assert rows.children["telecoms"][0]["value"] == "(617) 495-2000"
    assert rows.children["telecoms"][0]["value_e164"] == "+16174952000"
    assert rows.main["primary_phone"] == "+16174952000"


def test_primary_phone_prefers_lowest_rank() -> None:
    rows = _rows(patient(telecom=[
        {"system": "phone", "value": "(617) 495-2000"},
        {"system": "phone", "value": "(617) 495-2001", "rank": 1},
    ]))
    assert rows.main["primary_phone"] == "+16174952001"


def test_primary_phone_skips_unparseable_numbers() -> None:
    rows = _rows(patient(telecom=[
        {"system": "phone", "value": "555-1234"},
        {"system": "sms", "value": "617.495.2002"},
    ]))
    assert rows.main["primary_phone"] == "+16174952002"


def test_unparseable_phone_is_kept_without_e164() -> None:
    sent = patient(telecom=[{"system": "phone", "value": "(03) 5555 6473"}])
    rows = _rows(sent)
    assert rows.children["telecoms"][0]["value_e164"] is None
    assert rows_to_resource(rows, CONTEXT)["telecom"] == sent["telecom"]


def test_email_column_holds_first_email() -> None:
    rows = _rows(patient(telecom=[{"system": "email", "value": "Ana@Example.org"},
                                  {"system": "email", "value": "b@example.org"}]))
    assert rows.main["email"] == "Ana@Example.org"


@pytest.mark.parametrize(
    ("telecom", "path"),
    [
        ([{"system": "phone", "value": "abc"}], "Patient.telecom[0].value"),
        ([{"system": "email", "value": "a@example.org"}, {"system": "sms", "value": "call me"}],
         "Patient.telecom[1].value"),
        ([{"system": "fax", "value": "--"}], "Patient.telecom[0].value"),
        ([{"system": "email", "value": "not-an-email"}], "Patient.telecom[0].value"),
        ([{"system": "email", "value": "a@b"}], "Patient.telecom[0].value"),
    ],
    ids=["phone", "sms-second", "fax", "email-no-at", "email-no-dot"],
)
def test_invalid_contact_point_is_refused_naming_it(telecom: list, path: str) -> None:
    with pytest.raises(PatientRuleError) as error:
        _rows(patient(telecom=telecom))
    assert _issue_paths(error) == [path]


def test_other_telecom_systems_are_not_checked() -> None:
    sent = patient(telecom=[{"system": "url", "value": "not a url"},
                            {"system": "other", "value": "pigeon"}])
    assert _round_trip(sent)["telecom"] == sent["telecom"]


def test_every_rule_failure_is_reported_at_once() -> None:
    sent = patient(identifier=[{"system": SSN_SYSTEM, "value": "1"}],
                   telecom=[{"system": "phone", "value": "abc"}],
                   birthDate="2999-01-01")
    with pytest.raises(PatientRuleError) as error:
        _rows(sent)
    assert sorted(_issue_paths(error)) == [
        "Patient.birthDate", "Patient.identifier[0].value", "Patient.telecom[0].value"]


# ---------------------------------------------------------------------------- birthDate


@pytest.mark.parametrize(
    ("birth_date", "column", "precision"),
    [("1984-03-09", date(1984, 3, 9), "day"), ("1984-03", date(1984, 3, 1), "month"),
     ("1984", date(1984, 1, 1), "year")],
)
def test_birth_date_columns_keep_precision(birth_date: str, column: date, precision: str) -> None:
    rows = _rows(patient(birthDate=birth_date))
    assert (rows.main["birth_date"], rows.main["birth_date_precision"]) == (column, precision)


@pytest.mark.parametrize("birth_date", ["1984-03-09", "1984-03", "1984"])
def test_partial_birth_date_reads_back_as_sent(birth_date: str) -> None:
    assert _round_trip(patient(birthDate=birth_date))["birthDate"] == birth_date


def test_future_birth_date_is_refused() -> None:
    future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    with pytest.raises(PatientRuleError) as error:
        _rows(patient(birthDate=future))
    assert _issue_paths(error) == ["Patient.birthDate"]


def test_birth_date_today_is_accepted() -> None:
    today = datetime.now(UTC).date().isoformat()
    assert _round_trip(patient(birthDate=today))["birthDate"] == today


def test_impossible_birth_date_is_refused() -> None:
    with pytest.raises(PatientRuleError) as error:
        _rows(patient(birthDate="1984-02-30"))
    assert _issue_paths(error) == ["Patient.birthDate"]


# ------------------------------------------------------------------------ summary columns


@pytest.mark.parametrize(
    ("overrides", "status"),
    [({}, "active"), ({"active": False}, "inactive"), ({"deceasedBoolean": True}, "deceased"),
     ({"deceasedBoolean": False, "active": False}, "inactive"),
     ({"deceasedDateTime": "2020-05-06"}, "deceased")],
    ids=["active", "inactive", "deceased", "not-deceased-inactive", "deceased-datetime"],
)
def test_status_column(overrides: dict, status: str) -> None:
    assert _rows(patient(**overrides)).main["status"] == status


@pytest.mark.parametrize(
    ("value", "key"), [(False, "active"), (False, "deceasedBoolean"), (True, "deceasedBoolean"),
                       ("2020-05-06T07:08:09+02:00", "deceasedDateTime")])
def test_boolean_and_deceased_elements_read_back(value: Any, key: str) -> None:
    assert _round_trip(patient(**{key: value}))[key] == value


def test_legal_name_comes_from_official_name() -> None:
    rows = _rows(patient(name=[{"use": "nickname", "given": ["Annie"]},
                               {"use": "official", "family": "O'Brien", "given": ["Zoë", "Ana"]}]))
    assert (rows.main["legal_name"], rows.main["family_name"], rows.main["given_name"]) == (
        "Zoë Ana O'Brien", "O'Brien", "Zoë Ana")


def test_legal_name_prefers_name_text() -> None:
    rows = _rows(patient(name=[{"text": "Dr. Ana Rivera", "family": "Rivera"}]))
    assert rows.main["legal_name"] == "Dr. Ana Rivera"


def test_address_columns_come_from_first_address() -> None:
    rows = _rows(patient(address=[{"line": ["12 Elm St", "Apt 3"], "city": "Boston",
                                   "state": "MA", "postalCode": "02115", "country": "US"},
                                  {"city": "Salem"}]))
    assert {key: rows.main[key] for key in ("address_line", "address_city", "address_state",
                                            "address_postal_code", "address_country")} == {
        "address_line": "12 Elm St, Apt 3", "address_city": "Boston", "address_state": "MA",
        "address_postal_code": "02115", "address_country": "US"}


def test_child_rows_keep_element_positions() -> None:
    rows = _rows(patient(name=[{"family": "A"}, {"family": "B"}, {"family": "C"}]))
    assert [(row["position"], row["family"]) for row in rows.children["names"]] == [
        (0, "A"), (1, "B"), (2, "C")]


# ------------------------------------------------------------------------- demographics


def test_demographic_columns_are_derived() -> None:
    rows = _rows(patient(
        extension=[_race("2106-3", "White"),
                   {"extension": [{"url": "ombCategory",
                                   "valueCoding": {"system": CDC_SYSTEM, "code": "2135-2"}}],
                    "url": ETHNICITY_URL}],
        communication=[{"language": {"coding": [{"code": "en"}]}},
                       {"language": {"coding": [{"code": "es"}]}, "preferred": True}],
        contact=[{"relationship": [{"text": "sister"}],
                  "name": {"given": ["Marta"], "family": "Rivera"},
                  "telecom": [{"system": "email", "value": "m@example.org"},
                              {"system": "phone", "value": "617-495-2003"}]}],
    ))
    assert {key: rows.main[key] for key in (
        "race_code", "race_display", "ethnicity_code", "ethnicity_display", "preferred_language",
        "emergency_contact_name", "emergency_contact_relationship", "emergency_contact_phone",
    )} == {
        "race_code": "2106-3", "race_display": "White", "ethnicity_code": "2135-2",
        "ethnicity_display": None, "preferred_language": "es",
        "emergency_contact_name": "Marta Rivera", "emergency_contact_relationship": "sister",
        "emergency_contact_phone": "+16174952003",
    }


def test_preferred_language_defaults_to_first_communication() -> None:
    rows = _rows(patient(communication=[{"language": {"coding": [{"code": "vi"}]}},
                                        {"language": {"coding": [{"code": "en"}]}}]))
    assert rows.main["preferred_language"] == "vi"


def test_race_code_changed_in_row_rebuilds_extension() -> None:
    other = {"url": "http://example.org/favourite-colour", "valueString": "blue"}
    rows = _rows(patient(extension=[other, _race("2106-3", "White")]))
    rows.main["race_code"] = "2028-9"
    rows.main["race_display"] = "Asian"
    assert rows_to_resource(rows, CONTEXT)["extension"] == [other, _race("2028-9", "Asian")]


def test_race_cleared_in_row_removes_extension() -> None:
    rows = _rows(patient(extension=[_race("2106-3", "White")]))
    rows.main["race_code"] = None
    rows.main["race_display"] = None
    assert "extension" not in rows_to_resource(rows, CONTEXT)


def test_race_set_in_row_adds_extension() -> None:
    rows = _rows(patient())
    rows.main["race_code"] = "2054-5"
    rows.main["race_display"] = "Black or African American"
    read = rows_to_resource(rows, CONTEXT)
    assert read["extension"] == [_race("2054-5", "Black or African American")]


def test_preferred_language_changed_in_row_rebuilds_communication() -> None:
    rows = _rows(patient(communication=[
        {"language": {"coding": [{"code": "en"}]}},
        {"language": {"coding": [{"code": "es"}]}, "preferred": True}]))
    rows.main["preferred_language"] = "fr"
    assert rows_to_resource(rows, CONTEXT)["communication"] == [
        {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr"}]},
         "preferred": True},
        {"language": {"coding": [{"code": "en"}]}},
    ]


def test_emergency_contact_changed_in_row_rebuilds_first_contact_only() -> None:
    second = {"name": {"text": "Luis Rivera"}}
    rows = _rows(patient(contact=[{"name": {"text": "Marta Rivera"}}, second]))
    rows.main["emergency_contact_name"] = "Jorge Rivera"
    rows.main["emergency_contact_phone"] = "+16174952004"
    assert rows_to_resource(rows, CONTEXT)["contact"] == [
        {"name": {"text": "Jorge Rivera"},
         "telecom": [{"system": "phone", "value": "+16174952004"}]},
        second,
    ]


def test_demographic_elements_read_back_as_written_when_columns_agree() -> None:
    sent = patient(
        extension=[_race("2106-3", "White")],
        communication=[{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}],
                                     "text": "English"}, "preferred": True}],
        contact=[{"relationship": [{"coding": [{"code": "C"}]}],
                  "name": {"family": "Rivera", "given": ["Marta"]},
                  "telecom": [{"system": "phone", "value": "(617) 495-2003", "use": "home"}],
                  "gender": "female"}],
    )
    assert without_server_elements(_round_trip(sent)) == sent


def test_format_instant_is_utc_with_milliseconds() -> None:
    moment = datetime(2024, 5, 6, 9, 8, 7, 654321, tzinfo=timezone(timedelta(hours=2)))
    assert format_instant(moment) == "2024-05-06T07:08:07.654Z"
