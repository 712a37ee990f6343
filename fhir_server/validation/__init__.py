"""Resource validation: JSON syntax, R4 structure (fhir.resources), strict JSON types, codes."""
