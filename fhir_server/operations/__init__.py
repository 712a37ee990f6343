"""FHIR operations ($match, ...): each module takes typed inputs and returns a resource;
the HTTP layer parses and renders."""
