"""Canonical URIs of the code and identifier systems the Patient mapping relies on."""

from __future__ import annotations

SSN = "http://hl7.org/fhir/sid/us-ssn"
"""US Social Security Number identifiers."""

V2_IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
"""HL7 v2 table 0203, identifier types (``MR`` = medical record number)."""

MEDICAL_RECORD_NUMBER = "MR"

CDC_RACE_ETHNICITY = "urn:oid:2.16.840.1.113883.6.238"
"""CDC Race & Ethnicity code system used by the US Core race/ethnicity extensions."""

US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"

BCP_47 = "urn:ietf:bcp:47"
"""Language tags (Patient.communication.language)."""

LOINC = "http://loinc.org"

PRM_DOCUMENT_CATEGORY = "urn:prm:document-category"
"""The PRM's own media categories (medical_record, lab_result, ...)."""

DOCUMENT_SOURCE_EXTENSION = "urn:prm:fhir:StructureDefinition:document-source"
"""Extension on DocumentReference: where the PRM got the file (valueCode upload, whatsapp,
email, voice_agent, fax, ehr)."""

DOCUMENT_REFERENCE_STATUS = "http://hl7.org/fhir/document-reference-status"
COMPOSITION_STATUS = "http://hl7.org/fhir/composition-status"
MIME_TYPES = "urn:ietf:bcp:13"
