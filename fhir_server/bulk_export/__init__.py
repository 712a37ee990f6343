"""Bulk Data export (https://hl7.org/fhir/uv/bulkdata/export.html, v2): ``$export`` at system
and Patient level, run in the background, NDJSON files in the blob store."""
