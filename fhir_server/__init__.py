"""FHIR R4 (4.0.1) facade over a patient relationship management (PRM) database."""

__version__ = "0.1.0"
SOFTWARE_NAME = "fhir-prm-facade"
