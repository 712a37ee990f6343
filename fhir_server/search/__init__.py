"""FHIR search: parse the query into typed clauses (pure), then storage compiles them to SQL."""
