"""FHIR resource <-> PRM rows, one module per resource type, lossless both ways."""
