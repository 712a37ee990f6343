"""A realistic US Patient resource used as the create payload and the preload data."""

from __future__ import annotations

from typing import Any

import orjson

# The sending EHR's own record number system: the server keeps it and assigns its own MRN.
EHR_MRN_SYSTEM = "http://hospital.example.org/fhir/sid/mrn"
MRN_PLACEHOLDER = "__MRN__"


def patient(mrn: str) -> dict[str, Any]:
    """One US Patient (no id) with the EHR's record number ``mrn`` (also in the email)."""
    return {
        "resourceType": "Patient",
        "identifier": [
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "system": EHR_MRN_SYSTEM,
                "value": mrn,
            }
        ],
        "active": True,
        "name": [{"use": "official", "family": "Donovan", "given": ["Margaret", "Anne"]}],
        "telecom": [
            {"system": "phone", "value": "+1 617 555 0134", "use": "mobile"},
            {"system": "email", "value": f"margaret.donovan.{mrn}@example.com", "use": "home"},
        ],
        "gender": "female",
        "birthDate": "1984-07-12",
        "address": [
            {
                "use": "home",
                "line": ["42 Beacon Street", "Apt 3B"],
                "city": "Boston",
                "state": "MA",
                "postalCode": "02108",
                "country": "US",
            }
        ],
    }


def patient_body(mrn: str) -> bytes:
    """The Patient serialized as compact JSON bytes."""
    return orjson.dumps(patient(mrn))


def body_template() -> list[str]:
    """The JSON body split around each place the record number appears (identifier and email),
    so a load script can make every request's patient distinct."""
    return patient_body(MRN_PLACEHOLDER).decode().split(MRN_PLACEHOLDER)
