"""SMART scope parsing and what each scope reaches."""

from __future__ import annotations

import pytest

from fhir_server.security.scopes import UNRESTRICTED, Reach, ScopeSet, parse_scope


@pytest.mark.parametrize(("text", "letters"), [
    ("user/Patient.rs", "rs"), ("user/Patient.cruds", "cruds"), ("system/Binary.r", "r"),
    ("patient/Communication.cu", "cu"), ("user/Patient.read", "rs"),
    ("user/Patient.write", "cud"), ("user/Patient.*", "cruds"),
])
def test_v1_and_v2_permissions_parse_to_letters(text: str, letters: str) -> None:
    scope = parse_scope(text)
    assert scope is not None and scope.permissions == frozenset(letters)


@pytest.mark.parametrize("text", ["openid", "launch/patient", "user/Patient.rs?category=x",
                                  "user/Patient.sr", "user/Patient.", "admin/Patient.rs",
                                  "user/patient.rs", "user/Observation.$merge", "fhirUser"])
def test_scopes_this_server_does_not_honour_grant_nothing(text: str) -> None:
    assert parse_scope(text) is None


def test_user_scope_reaches_all_and_patient_scope_the_compartment() -> None:
    scopes = ScopeSet.from_claim("user/Patient.r patient/DocumentReference.rs")
    assert scopes.reach("Patient", "r") is Reach.ALL
    assert scopes.reach("Patient", "s") is Reach.NONE
    assert scopes.reach("DocumentReference", "s") is Reach.COMPARTMENT
    assert scopes.reach("Binary", "r") is Reach.NONE


def test_user_scope_wins_over_patient_scope() -> None:
    scopes = ScopeSet.from_claim(["patient/Patient.rs", "user/Patient.r"])
    assert scopes.reach("Patient", "r") is Reach.ALL
    assert scopes.reach("Patient", "s") is Reach.COMPARTMENT


def test_wildcard_reaches_every_type_but_the_audit_trail_and_named_permissions() -> None:
    scopes = ScopeSet.from_claim("user/*.cruds")
    assert scopes.reach("Binary", "d") is Reach.ALL
    assert scopes.reach("AuditEvent", "r") is Reach.NONE
    assert scopes.reach("Patient", "$merge") is Reach.NONE
    assert scopes.reach("Patient", "$reveal-ssn") is Reach.NONE


def test_named_permissions_and_auditor_scope() -> None:
    scopes = ScopeSet.from_claim("user/Patient.$merge system/AuditEvent.rs")
    assert scopes.reach("Patient", "$merge") is Reach.ALL
    assert scopes.reach("Patient", "$match") is Reach.NONE
    assert scopes.reach("AuditEvent", "s") is Reach.ALL


def test_no_scope_claim_grants_nothing_and_unrestricted_grants_all() -> None:
    assert ScopeSet.from_claim(None).reach("Patient", "r") is Reach.NONE
    assert UNRESTRICTED.reach("AuditEvent", "r") is Reach.ALL
